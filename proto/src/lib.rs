//! The `tapline.v1` wire contract: messages, service clients and server traits generated from
//! `proto/tapline/v1/*.proto`.

#![allow(clippy::all, missing_docs)]

pub mod codec;
pub mod limits;

/// Package `tapline.v1`.
pub mod v1 {
    tonic::include_proto!("tapline.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tapline_descriptor.bin"));
