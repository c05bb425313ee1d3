//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libtapline_core.so ...`
fn main() {
    uniffi::uniffi_bindgen_main()
}
