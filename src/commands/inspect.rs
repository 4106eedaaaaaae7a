//! `regcache inspect`: what one cache holds, for people or as JSON.

use std::io::Write;

use regcache::cli::InspectArgs;
use regcache::ops::{OpsError, inspect};
use regcache::spec::parse_cache_from;

use super::{Context, Finished};

pub(crate) async fn cmd_inspect(args: InspectArgs, ctx: &Context) -> Finished {
    if ctx.metadata_file.is_some() {
        tracing::warn!(
            "inspect does not write --metadata-file; use `inspect --json` for a machine-readable report"
        );
    }
    let mut specs = match parse_cache_from(&args.spec) {
        Ok(specs) => specs,
        Err(err) => return OpsError::from(err).into(),
    };
    if specs.len() != 1 {
        return OpsError::Usage {
            message: format!(
                "inspect takes one cache, {:?} names {}",
                args.spec,
                specs.len()
            ),
            hint: None,
        }
        .into();
    }
    let spec = specs.remove(0);
    let report = match inspect::inspect(&spec, &ctx.store).await {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{}", report.render_human())
    };
    match written {
        Ok(()) => Finished::ok(),
        Err(e) => OpsError::Failed(format!("writing to stdout: {e}")).into(),
    }
}
