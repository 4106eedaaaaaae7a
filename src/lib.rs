//! regcache: buildx-style `--cache-to` / `--cache-from` for directories, and a
//! toolbox for BuildKit cache images.
//!
//! Data flows one way: a spec (`spec`) becomes a plan (`ops`), which reads and
//! writes cache images (`image`) made of layers (`layer`) in a store (`store`).

pub mod cli;
pub mod compression;
pub mod digest;
#[cfg(test)]
mod fuzz;
pub mod image;
pub mod layer;
pub mod ops;
pub mod progress;
pub mod reference;
pub mod spec;
pub mod store;
pub mod wrap;
