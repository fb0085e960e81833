//! Point podman at the unistore containers-storage view through
//! `storage.conf`'s `additionalimagestores`, reversibly.
//!
//! podman 4.3 (containers/storage 1.43) reads exactly one storage
//! configuration: `$CONTAINERS_STORAGE_CONF`, else `/etc/containers/storage.conf`,
//! else `/usr/share/containers/storage.conf`, else built-in defaults; it has
//! no drop-in directory. So `install` edits the file podman reads (copying the
//! vendor file to `/etc` first, or writing a complete minimal file when none
//! exists), and keeps the original bytes so `remove` restores them exactly.
//!
//! The editing functions are pure ([`add_store`], [`remove_store`],
//! [`list_stores`]) and keep every other line, comment and option as it was.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors from installing or removing the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The existing file could not be understood well enough to edit it safely.
    #[error("{path}: {problem}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfError + '_ {
    move |source| ConfError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const TABLE: &str = "[storage.options]";
const KEY: &str = "additionalimagestores";

/// A complete storage.conf for a host that had none: podman's built-in
/// defaults for root, plus the store.
pub fn default_config(store: &str) -> String {
    format!(
        "# Written by `unistore conf install`; `unistore conf remove` deletes it.\n\
         # These are podman's built-in defaults for root, plus the unistore view.\n\
         [storage]\n\
         driver = \"overlay\"\n\
         runroot = \"/run/containers/storage\"\n\
         graphroot = \"/var/lib/containers/storage\"\n\
         \n\
         [storage.options]\n\
         {KEY} = [\"{store}\"]\n"
    )
}

fn is_table_header(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('[')
}

fn table_name(line: &str) -> Option<String> {
    let t = line.trim();
    let t = t.split('#').next().unwrap_or("").trim();
    if t.starts_with("[[") {
        return Some(t.to_string());
    }
    t.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .map(|n| format!("[{}]", n.trim().replace(' ', "")))
}

/// Where the `additionalimagestores` array is: (first line, last line, values).
fn find_key(lines: &[&str]) -> Result<Option<(usize, usize, Vec<String>)>, String> {
    let mut in_table = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_table_header(line) {
            in_table = table_name(line).as_deref() == Some(TABLE);
            i += 1;
            continue;
        }
        let t = line.trim_start();
        if in_table && !t.starts_with('#') {
            if let Some(rest) = t.strip_prefix(KEY) {
                let rest = rest.trim_start();
                if let Some(val) = rest.strip_prefix('=') {
                    // Collect the array text up to the closing bracket.
                    let mut text = val.to_string();
                    let mut end = i;
                    while !strip_comment(&text).contains(']') {
                        end += 1;
                        if end >= lines.len() {
                            return Err(format!("unterminated {KEY} array"));
                        }
                        text.push('\n');
                        text.push_str(lines[end]);
                    }
                    return Ok(Some((i, end, parse_array(&text)?)));
                }
            }
        }
        i += 1;
    }
    Ok(None)
}

fn strip_comment(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut quote = None;
            let mut out = String::new();
            for c in l.chars() {
                match quote {
                    Some(q) if c == q => quote = None,
                    None if c == '"' || c == '\'' => quote = Some(c),
                    None if c == '#' => break,
                    _ => {}
                }
                out.push(c);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_array(text: &str) -> Result<Vec<String>, String> {
    let t = strip_comment(text);
    let t = t.trim();
    let inner = t
        .strip_prefix('[')
        .and_then(|r| r.trim_end().strip_suffix(']'))
        .ok_or_else(|| format!("{KEY} is not an array"))?;
    let mut out = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let v = item
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| item.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .ok_or_else(|| format!("{KEY} holds a non-string value `{item}`"))?;
        if !is_plain(v) {
            return Err(format!("{KEY} holds `{item}`, which this tool cannot rewrite faithfully (quotes, backslashes, commas or control characters)"));
        }
        out.push(v.to_string());
    }
    Ok(out)
}

/// Whether `s` can be written between double quotes and read back by
/// `parse_array` as itself (issue 6, fuzzing).
fn is_plain(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\\' | ','))
}

fn render_array(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("{KEY} = [{}]", quoted.join(", "))
}

/// The additional image stores configured in `text`.
pub fn list_stores(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = text.lines().collect();
    Ok(find_key(&lines)?.map(|(_, _, v)| v).unwrap_or_default())
}

fn join(lines: &[String], trailing_newline: bool) -> String {
    let mut s = lines.join("\n");
    if trailing_newline {
        s.push('\n');
    }
    s
}

/// `text` with `store` added to `additionalimagestores` (unchanged if present).
pub fn add_store(text: &str, store: &str) -> Result<String, String> {
    if !is_plain(store) {
        return Err(format!(
            "cannot add `{}` to {KEY}: quotes, backslashes, commas and control characters are not supported",
            store.escape_debug()
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    let nl = text.ends_with('\n') || text.is_empty();
    match find_key(&lines)? {
        Some((_, _, v)) if v.iter().any(|x| x == store) => Ok(text.to_string()),
        Some((start, end, mut v)) => {
            v.push(store.to_string());
            let indent: String = lines[start]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            let mut out: Vec<String> = lines[..start].iter().map(|s| s.to_string()).collect();
            out.push(format!("{indent}{}", render_array(&v)));
            out.extend(lines[end + 1..].iter().map(|s| s.to_string()));
            Ok(join(&out, nl))
        }
        None => {
            let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let entry = render_array(&[store.to_string()]);
            match lines
                .iter()
                .position(|l| table_name(l).as_deref() == Some(TABLE))
            {
                Some(pos) => out.insert(pos + 1, entry),
                None => {
                    if !out.is_empty() && !out.last().is_some_and(|l| l.trim().is_empty()) {
                        out.push(String::new());
                    }
                    out.push(TABLE.to_string());
                    out.push(entry);
                }
            }
            Ok(join(&out, true))
        }
    }
}

/// `text` with `store` removed from `additionalimagestores`.
pub fn remove_store(text: &str, store: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let nl = text.ends_with('\n');
    match find_key(&lines)? {
        Some((start, end, v)) if v.iter().any(|x| x == store) => {
            let v: Vec<String> = v.into_iter().filter(|x| x != store).collect();
            let indent: String = lines[start]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            let mut out: Vec<String> = lines[..start].iter().map(|s| s.to_string()).collect();
            out.push(format!("{indent}{}", render_array(&v)));
            out.extend(lines[end + 1..].iter().map(|s| s.to_string()));
            Ok(join(&out, nl))
        }
        _ => Ok(text.to_string()),
    }
}

/// The storage.conf podman reads on this host, and whether it exists.
pub fn effective_path() -> (PathBuf, bool) {
    if let Some(p) = std::env::var_os("CONTAINERS_STORAGE_CONF") {
        let p = PathBuf::from(p);
        let e = p.exists();
        return (p, e);
    }
    let etc = PathBuf::from("/etc/containers/storage.conf");
    if etc.exists() {
        return (etc, true);
    }
    let usr = PathBuf::from("/usr/share/containers/storage.conf");
    if usr.exists() {
        return (usr, true);
    }
    (etc, false)
}

/// Where `install` writes: the effective file, except that a vendor file in
/// `/usr/share` is never edited (it is copied to `/etc` first).
pub fn target_path() -> PathBuf {
    let (p, _) = effective_path();
    if p.starts_with("/usr/share") {
        PathBuf::from("/etc/containers/storage.conf")
    } else {
        p
    }
}

fn backup_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.unistore-orig"))
}

/// Marker content of a backup recording that the file did not exist.
const ABSENT: &[u8] = b"unistore: file did not exist\n";

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ConfError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("unistore-tmp");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(io(&tmp))?;
    if let Ok(md) = fs::metadata(path) {
        let _ = fs::set_permissions(&tmp, md.permissions());
    }
    fs::rename(&tmp, path).map_err(io(path))
}

/// What `install` / `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file was written.
    Changed(PathBuf),
    /// Nothing to do.
    Unchanged(PathBuf),
}

/// Add `store` to the configuration podman reads. Idempotent.
pub fn install(store: &str) -> Result<Outcome, ConfError> {
    let (effective, exists) = effective_path();
    let target = target_path();
    let original: Option<Vec<u8>> = if target.exists() {
        Some(fs::read(&target).map_err(io(&target))?)
    } else {
        None
    };
    let base_text = match (&original, exists) {
        (Some(b), _) => String::from_utf8_lossy(b).into_owned(),
        (None, true) => fs::read_to_string(&effective).map_err(io(&effective))?,
        (None, false) => String::new(),
    };
    let new_text = if base_text.is_empty() && original.is_none() && !exists {
        default_config(store)
    } else {
        add_store(&base_text, store).map_err(|problem| ConfError::Parse {
            path: target.clone(),
            problem,
        })?
    };
    if original.as_deref() == Some(new_text.as_bytes()) {
        return Ok(Outcome::Unchanged(target));
    }
    let backup = backup_path(&target);
    if !backup.exists() {
        write_atomic(&backup, original.as_deref().unwrap_or(ABSENT))?;
    }
    write_atomic(&target, new_text.as_bytes())?;
    Ok(Outcome::Changed(target))
}

/// Undo [`install`]: restore the original bytes when the file holds exactly
/// what we made of it, else remove only our entry.
pub fn remove(store: &str) -> Result<Outcome, ConfError> {
    let target = target_path();
    let backup = backup_path(&target);
    let current = fs::read(&target).ok();
    let original = fs::read(&backup).ok();
    match (current, original) {
        (None, _) => Ok(Outcome::Unchanged(target)),
        (Some(cur), Some(orig)) => {
            let cur_text = String::from_utf8_lossy(&cur).into_owned();
            let stripped = remove_store(&cur_text, store).map_err(|problem| ConfError::Parse {
                path: target.clone(),
                problem,
            })?;
            let ours = if orig == ABSENT {
                cur_text == default_config(store)
            } else {
                add_store(&String::from_utf8_lossy(&orig), store)
                    .ok()
                    .as_deref()
                    == Some(cur_text.as_str())
            };
            if ours {
                if orig == ABSENT {
                    fs::remove_file(&target).map_err(io(&target))?;
                } else {
                    write_atomic(&target, &orig)?;
                }
            } else if stripped != cur_text {
                write_atomic(&target, stripped.as_bytes())?;
            }
            fs::remove_file(&backup).map_err(io(&backup))?;
            Ok(Outcome::Changed(target))
        }
        (Some(cur), None) => {
            let cur_text = String::from_utf8_lossy(&cur).into_owned();
            let stripped = remove_store(&cur_text, store).map_err(|problem| ConfError::Parse {
                path: target.clone(),
                problem,
            })?;
            if stripped == cur_text {
                return Ok(Outcome::Unchanged(target));
            }
            write_atomic(&target, stripped.as_bytes())?;
            Ok(Outcome::Changed(target))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "/run/unistore/containers-storage";

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            // no table at all
            ("[storage]\ndriver = \"overlay\"\n", "[storage]\ndriver = \"overlay\"\n\n[storage.options]\nadditionalimagestores = [\"/run/unistore/containers-storage\"]\n"),
            // table without the key, comments kept
            ("# top\n[storage.options]\n# keep me\nmount_program = \"/x\"\n", "# top\n[storage.options]\nadditionalimagestores = [\"/run/unistore/containers-storage\"]\n# keep me\nmount_program = \"/x\"\n"),
            // existing single-line array
            ("[storage.options]\nadditionalimagestores = [ \"/a\" ]\n", "[storage.options]\nadditionalimagestores = [\"/a\", \"/run/unistore/containers-storage\"]\n"),
            // multi-line array with comments
            ("[storage.options]\nadditionalimagestores = [\n  \"/a\", # first\n  \"/b\",\n]\n[storage.options.overlay]\nmountopt = \"nodev\"\n",
             "[storage.options]\nadditionalimagestores = [\"/a\", \"/b\", \"/run/unistore/containers-storage\"]\n[storage.options.overlay]\nmountopt = \"nodev\"\n"),
        ];
        for (input, want) in cases {
            let got = add_store(input, S).unwrap();
            assert_eq!(&got, want, "input: {input}");
            assert_eq!(add_store(&got, S).unwrap(), got, "idempotent");
            assert!(list_stores(&got).unwrap().contains(&S.to_string()));
            assert!(!list_stores(&remove_store(&got, S).unwrap())
                .unwrap()
                .contains(&S.to_string()));
        }
    }

    #[test]
    fn key_in_other_table_is_ignored() {
        let t = "[storage.options.overlay]\nadditionalimagestores = [\"/x\"]\n";
        assert!(list_stores(t).unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage() {
        assert!(add_store("[storage.options]\nadditionalimagestores = [\n", S).is_err());
        assert!(add_store("[storage.options]\nadditionalimagestores = 3\n", S).is_err());
    }

    /// Found by the storage_conf fuzzer: a store path with a quote and a
    /// newline was written unescaped, leaving a file neither podman nor
    /// `list_stores` could read; a comma made our own reader refuse the file.
    #[test]
    fn regression_issue6_store_needing_escapes() {
        let text =
            "[storage.options]\nadditionalimagestores = [\n  \"/a\", # first\n  \"/b\",\n]\n";
        for store in [
            "/x\0.overlay]\nmountopt = \"nodev\"\n",
            "/x\"y",
            "/x\\y",
            "/x,y",
            "/x\ny",
        ] {
            assert!(add_store(text, store).is_err(), "{store:?}");
        }
        let ok = add_store(text, "/x#y'z]").unwrap();
        assert_eq!(list_stores(&ok).unwrap(), ["/a", "/b", "/x#y'z]"]);
        // Existing values this tool would change by rewriting them are refused.
        for bad in ["[\"\r\r\n\"]", "['/a\"b']", "['/a\\b']"] {
            let t = format!("[storage.options]\nadditionalimagestores = {bad}\n");
            assert!(add_store(&t, S).is_err(), "{t}");
        }
        // A `#` inside a single-quoted value is not a comment.
        let t = "[storage.options]\nadditionalimagestores = ['/a#b']\n[storage.options.overlay]\nmountopt = \"x\"\n";
        let added = add_store(t, S).unwrap();
        assert_eq!(list_stores(&added).unwrap(), ["/a#b", S]);
        assert!(added.ends_with("[storage.options.overlay]\nmountopt = \"x\"\n"));
    }

    #[test]
    fn default_config_lists_store() {
        assert_eq!(
            list_stores(&default_config(S)).unwrap(),
            vec![S.to_string()]
        );
    }
}
