//! `SRC` arguments (`SourceRef::parse`, store/src/transport.rs) and the name
//! normalisation applied to image names (`source::qualify_name`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unistore_store::source::qualify_name;
use unistore_store::SourceRef;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match SourceRef::parse(s) {
        Ok(SourceRef::ContainersStorage { image, .. }) => {
            assert!(!image.is_empty(), "empty image name accepted from {s:?}");
            let _ = qualify_name(&image);
        }
        Ok(SourceRef::OciDir { path, reference })
        | Ok(SourceRef::OciArchive { path, reference })
        | Ok(SourceRef::DockerArchive { path, reference }) => {
            assert!(
                !path.as_os_str().is_empty(),
                "empty path accepted from {s:?}"
            );
            if let Some(r) = reference {
                assert!(!r.is_empty());
                let q = qualify_name(&r);
                assert_eq!(
                    qualify_name(&q),
                    q,
                    "qualify_name is not idempotent on {r:?}"
                );
            }
        }
        Err(_) => {}
    }
    let q = qualify_name(s);
    assert_eq!(
        qualify_name(&q),
        q,
        "qualify_name is not idempotent on {s:?}"
    );
});
