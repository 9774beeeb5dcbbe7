//! relevo.h is cbindgen's output for this crate's exported items: regenerated here and
//! compared with the committed file, so the header can never drift from the library.
//! `RELEVO_BLESS=1 cargo test -p relevo-c --test header` rewrites it.
use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8");
    let path = dir.join("relevo.h");
    if std::env::var_os("RELEVO_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("writing relevo.h");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "c-shim/relevo.h is stale: run RELEVO_BLESS=1 cargo test -p relevo-c --test header\n\
         --- generated\n{generated}"
    );
}
