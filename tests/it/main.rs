//! Every integration test, in one binary: the suite links once instead of
//! once per file, which on a 2-core machine was most of its build time.
//! Each module is one former `tests/NAME.rs`; `common` holds the shared
//! harness (the registry, the fixtures, the hostile caches).

mod common;
mod many_files;

mod cargo_target;
mod ci_recipes;
mod cli_copy;
mod cli_kill;
mod cli_local;
mod cli_ls;
mod cli_messages;
mod cli_progress;
mod cli_prune;
mod cli_registry;
mod cli_registry_faults;
mod cli_restore_keys;
mod cli_run;
mod cli_specs;
mod compression_default;
mod copy_keeps_source;
mod generated_files;
mod github_action;
mod help_snapshots;
mod image_golden;
mod image_merge;
mod incremental;
mod inspect_snapshots;
mod layer_buildkit;
mod layer_estargz;
mod layer_memory;
mod layer_roundtrip;
mod manifest_integrity;
mod prune_export_race;
mod prune_promises;
mod registry_auth;
mod registry_harness;
mod registry_recovery;
mod registry_resume;
mod registry_store;
mod registry_tls;
mod restore_escapes;
mod rigs;
mod single_file;
mod skopeo_interop;
mod spec_snapshots;
