//! Compiles the CRI `runtime.v1` API (proto/cri/api.proto) into `$OUT_DIR/runtime.v1.rs`,
//! clients and servers both.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("../../proto/cri");
    let proto = proto_dir.join("api.proto");
    // The proto lives outside this package, where cargo does not look for changes by itself.
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-changed=build.rs");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Registry credentials must not reach logs through `{:?}`: lib.rs writes a Debug
        // that redacts them.
        .skip_debug(["runtime.v1.AuthConfig"])
        .compile_protos(&[proto], &[proto_dir])?;
    Ok(())
}
