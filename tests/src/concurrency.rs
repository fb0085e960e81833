//! Issue 6, concurrency: podman containers read whole trees through the
//! containers-storage view while `unistore import`, `rmi` and `gc` run; what
//! they read never changes and matches podman's native storage.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::host::Mounted;

/// Containers reading at the same time.
const READERS: usize = 3;
/// Rounds each reader does at least.
const MIN_ROUNDS: usize = 3;
/// Rounds each reader does at most (bounds the test if the churn hangs).
const MAX_ROUNDS: usize = 25;
/// Times base is removed and gc runs (base re-imported in between).
const CHURN_ROUNDS: usize = 8;

/// The readers' script (busybox sh). `$1`: minimum rounds. Each round
/// checksums every regular file of /usr, /etc and /srv (sorted `sha256sum`
/// lines, hashed) and prints `round N SUM AFTER`, AFTER being 1 when
/// `/signal/churned` existed as the round began. After round 1 it touches
/// `/signal/ready-$HOSTNAME`. It stops once it has done `$1` rounds and one
/// round that began after the churn.
const READER_SCRIPT: &str = r#"set -eu -o pipefail
sum() {
  find /usr /etc /srv -xdev -type f ! -path /etc/hosts ! -path /etc/hostname \
    ! -path /etc/resolv.conf -exec sha256sum {} + | sort | sha256sum | cut -d' ' -f1
}
i=0
while :; do
  after=0; [ -e /signal/churned ] && after=1
  s=$(sum)
  i=$((i+1))
  echo "round $i $s $after"
  [ $i -gt 1 ] || touch "/signal/ready-$(hostname)"
  if [ $i -ge "$1" ] && [ $after = 1 ]; then break; fi
  if [ $i -ge MAX ]; then echo "gave up after $i rounds" >&2; exit 3; fi
done
"#;

fn script() -> String {
    READER_SCRIPT.replace("MAX", &MAX_ROUNDS.to_string())
}

/// `podman run --rm` of `image` running the reader script as container and
/// host `name`, with `signal` mounted at /signal.
fn reader_cmd(
    podman: &IsolatedPodman,
    extra_global: &[String],
    name: &str,
    image: &str,
    signal: &Path,
    min_rounds: usize,
) -> Command {
    let mut args: Vec<String> = extra_global.to_vec();
    args.extend(
        [
            "run",
            "--rm",
            "--pull",
            "never",
            "--name",
            name,
            "--hostname",
            name,
        ]
        .map(String::from),
    );
    args.extend(
        fixtures()
            .get("FIXTURE_PODMAN_RUN_FLAGS")
            .split_whitespace()
            .map(String::from),
    );
    args.push("-v".into());
    args.push(format!("{}:/signal", signal.display()));
    args.extend([
        image.to_string(),
        "sh".into(),
        "-c".into(),
        script(),
        "sh".into(),
    ]);
    args.push(min_rounds.to_string());
    let mut c = podman.cmd(args);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// stdout of a `--json` command, parsed.
fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// `(sum, after)` of every `round` line of a reader's output.
fn rounds(out: &Output) -> Vec<(String, bool)> {
    stdout(out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["round", _, sum, after] => Some((sum.to_string(), *after == "1")),
                _ => None,
            }
        })
        .collect()
}

/// Stops the readers (at their next round) and removes their containers,
/// even when the test fails half-way.
struct Readers<'a> {
    podman: &'a IsolatedPodman,
    global: Vec<String>,
    signal: &'a Path,
    names: Vec<String>,
}

impl Drop for Readers<'_> {
    fn drop(&mut self) {
        let _ = fs::write(self.signal.join("churned"), b"");
        let mut args = self.global.clone();
        args.extend(["rm", "-f", "-t", "0"].map(String::from));
        args.extend(self.names.iter().cloned());
        let _ = self
            .podman
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Three containers checksum their whole tree (derived:1) in a loop through
/// the view while app:1 is imported and, in parallel, base:1 (whose only
/// layer derived shares) is removed, collected by gc and re-imported, eight
/// times, with the page cache dropped after each gc. Every round of every
/// reader equals the checksum over podman's native storage; afterwards fsck
/// is clean and the view shows the import and the removal.
#[test]
fn readers_see_stable_trees_during_import_rmi_gc() {
    let started = Instant::now();
    let fx = fixtures();
    let derived = fx.get("FIXTURE_DERIVED_IMAGE");
    let app = fx.get("FIXTURE_APP_IMAGE");
    let base = fx.get("FIXTURE_BASE_IMAGE");

    // The reference: the same script over podman's native storage.
    let native = IsolatedPodman::new();
    native.ok(["load", "-q", "-i", fx.get("FIXTURE_DERIVED_DOCKER_TAR")]);
    let nsig = tempdir("unistore-it-cc-signal-");
    fs::write(nsig.path().join("churned"), b"").unwrap();
    let out = run(&mut reader_cmd(
        &native,
        &[],
        "unistore-cc-native",
        derived,
        nsig.path(),
        1,
    ));
    assert!(
        out.status.success(),
        "native reader failed: {}",
        stderr(&out)
    );
    let want = match rounds(&out).as_slice() {
        [(sum, true)] => sum.clone(),
        r => panic!("native reader printed {r:?}:\n{}", stdout(&out)),
    };
    drop(native);
    eprintln!(
        "[cc] native checksum {want} after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The store: derived (read), base (removed during the churn); app comes later.
    let store = TempStore::new();
    store.import(&format!(
        "docker-archive:{}",
        fx.get("FIXTURE_DERIVED_DOCKER_TAR")
    ));
    store.ok([
        "import",
        "-q",
        "--name",
        base,
        &format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR")),
    ]);
    let m = Mounted::new(&store, &[]);
    let view = m.path().join("containers-storage");
    // Declared after the mount so that it (and its overlay mounts on the view) goes first.
    let podman = IsolatedPodman::new();
    let global = vec![
        "--storage-opt".to_string(),
        format!("additionalimagestore={}", view.display()),
    ];
    let sig = tempdir("unistore-it-cc-signal-");
    let mut readers = Readers {
        podman: &podman,
        global: global.clone(),
        signal: sig.path(),
        names: Vec::new(),
    };
    let mut handles = Vec::new();
    for i in 0..READERS {
        let name = format!("unistore-cc-reader-{i}");
        let mut c = reader_cmd(&podman, &global, &name, derived, sig.path(), MIN_ROUNDS);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(&c)));
        readers.names.push(name.clone());
        handles.push((name, thread::spawn(move || child.wait_with_output())));
    }

    // Churn once every reader has a first, undisturbed round.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !readers
        .names
        .iter()
        .all(|n| sig.path().join(format!("ready-{n}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "readers did not finish a first round within 120 s"
        );
        if let Some(i) = handles.iter().position(|(_, h)| h.is_finished()) {
            let (name, h) = handles.swap_remove(i);
            let out = h.join().expect("reader thread");
            match out {
                Ok(out) => panic!(
                    "{name} exited ({}) before its first round:\n{}{}",
                    out.status,
                    stdout(&out),
                    stderr(&out)
                ),
                Err(e) => panic!("{name}: waiting for podman run: {e}"),
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "[cc] readers' first round done after {:.1}s; churning",
        started.elapsed().as_secs_f64()
    );
    let churn = Instant::now();
    let app_src = format!("docker-archive:{}", fx.get("FIXTURE_APP_DOCKER_TAR"));
    let base_src = format!("oci:{}", fx.get("FIXTURE_BASE_OCI_DIR"));
    let ok = |out: Output, what: &str| -> Output {
        assert!(
            out.status.success(),
            "{what} during reads failed ({}): {}",
            out.status,
            stderr(&out)
        );
        out
    };
    // One thread imports app; the other removes base (whose only layer
    // derived shares) and collects garbage, three times over, re-importing
    // base in between and dropping the page cache so that the readers'
    // current rounds go to the daemon while gc runs.
    let gcs = thread::scope(|s| {
        let import = s.spawn(|| store.run(["import", "-q", &app_src]));
        let rmi_gc = s.spawn(|| {
            let mut gcs = Vec::new();
            for round in 0..CHURN_ROUNDS {
                if round > 0 {
                    ok(
                        store.run(["import", "-q", "--name", base, &base_src]),
                        "re-import of base",
                    );
                }
                ok(store.run(["rmi", base]), "rmi");
                // Looking at the view makes the daemon drop base from its
                // gc pins, so that gc really deletes while the readers read.
                let listed = fs::read_to_string(view.join("overlay-images/images.json"))
                    .expect("the view's images.json");
                assert!(
                    !listed.contains(fx.get("FIXTURE_BASE_ID")),
                    "removed {base} still in the view's images.json"
                );
                gcs.push(ok(store.run(["gc", "--json"]), "gc"));
                drop_page_cache();
            }
            gcs
        });
        ok(import.join().expect("import thread"), "import");
        rmi_gc.join().expect("rmi/gc thread")
    });
    let removed: Vec<u64> = gcs
        .iter()
        .map(|o| {
            json_of(o)["ObjectsRemoved"]
                .as_u64()
                .expect("ObjectsRemoved")
        })
        .collect();
    assert!(
        removed.iter().all(|&n| n > 0),
        "gc during the reads removed nothing ({removed:?} objects): the churn tested nothing"
    );
    let last = ok(store.run(["gc", "--json"]), "final gc");
    // What the readers read next comes from the daemon, not the page cache.
    drop_page_cache();
    fs::write(sig.path().join("churned"), b"").unwrap();
    eprintln!(
        "[cc] churn (import {app} | {CHURN_ROUNDS} x rmi {base} + gc, then gc) took {:.1}s; \
         gc removed {removed:?} objects, then {}",
        churn.elapsed().as_secs_f64(),
        json_of(&last)["ObjectsRemoved"]
    );

    // Every round of every reader saw the native tree.
    let mut failures = Vec::new();
    for (name, h) in handles {
        let out = h
            .join()
            .expect("reader thread")
            .expect("waiting for podman run");
        let r = rounds(&out);
        let ok = out.status.success()
            && r.len() >= MIN_ROUNDS
            && r.iter().any(|(_, after)| *after)
            && r.iter().all(|(sum, _)| *sum == want);
        eprintln!(
            "[cc] {name}: {} rounds, {}",
            r.len(),
            if ok {
                "all equal to native"
            } else {
                "MISMATCH"
            }
        );
        if !ok {
            failures.push(format!(
                "{name} ({}): rounds {r:?} (native {want})\nstderr:\n{}",
                out.status,
                stderr(&out)
            ));
        }
    }
    drop(readers);
    assert!(
        failures.is_empty(),
        "readers saw a changing tree:\n{}",
        failures.join("\n")
    );

    // The view shows the churn's outcome (looking at it also lets the daemon
    // drop its gc pin on the removed image)...
    let images = fs::read_to_string(view.join("overlay-images/images.json")).expect("images.json");
    assert!(
        images.contains(fx.get("FIXTURE_APP_ID")),
        "imported {app} missing from the view's images.json"
    );
    assert!(
        !images.contains(fx.get("FIXTURE_BASE_ID")),
        "removed {base} still in the view's images.json"
    );
    let mut args = global.clone();
    args.extend(["images", "--format", "{{.Repository}}:{{.Tag}}"].map(String::from));
    let listed = stdout(&podman.ok(args));
    assert!(
        listed.lines().any(|l| l == app) && listed.lines().any(|l| l == derived),
        "podman through the view lists:\n{listed}"
    );
    // ...so a last gc collects what the churn's gc had to keep, and the store is consistent.
    let gc3 = store.json(["gc", "--json"]);
    assert!(
        gc3["PinnedImages"].as_array().is_some_and(|p| p.is_empty()),
        "gc still keeps images nothing uses: {gc3:#}"
    );
    let fsck = store.run(["fsck", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&fsck.stdout)
        .unwrap_or_else(|e| panic!("fsck --json ({e}): {}{}", stdout(&fsck), stderr(&fsck)));
    assert!(
        fsck.status.success() && report["Findings"].as_array().is_some_and(|f| f.is_empty()),
        "fsck after the churn: {report:#}"
    );
    drop(podman);
    drop(m);
    eprintln!("[cc] done in {:.1}s", started.elapsed().as_secs_f64());
}
