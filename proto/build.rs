//! Compiles `tapline/v1/*.proto` with protox (no system protoc) and generates the tonic code.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tapline/v1");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tapline_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_server(cfg!(feature = "server"))
        .build_client(cfg!(feature = "client"))
        .build_transport(false)
        .codec_path("crate::codec::LeanCodec")
        // The two largest event payloads are boxed, so an `Event` is the size of a tap event
        // (about 250 bytes instead of 592): the server moves and clones events by the
        // thousand in every batch and every stream.
        .boxed(".tapline.v1.Event.payload.routine_fired")
        .boxed(".tapline.v1.Event.payload.checkin_updated")
        .boxed(".tapline.v1.Event.payload.space_updated")
        .boxed(".tapline.v1.Event.payload.together_updated")
        .boxed(".tapline.v1.Event.payload.question_updated")
        .boxed(".tapline.v1.Event.payload.reconnect_updated")
        .boxed(".tapline.v1.Event.payload.moment_kept")
        .boxed(".tapline.v1.Event.payload.recap_ready")
        .compile_fds(fds)?;
    Ok(())
}
