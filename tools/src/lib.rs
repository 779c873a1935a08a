//! The tools around venice-e2ee-proxy, kept out of the product: the simulated Venice (with
//! its test PKIs: a fake Intel root, a fake NVIDIA root, a fake Rekor), the load generator
//! and relay floor of `bench`, and the soak. The product's tests and benchmarks use them.

#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
pub mod procfs;
pub mod sim;
pub mod soak;
