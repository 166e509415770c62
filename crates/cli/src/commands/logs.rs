use anyhow::{bail, Result};
use lifeboat_engine::runlog;

use crate::context::Context;
use crate::exit;

pub fn show(ctx: &Context, slug: Option<&str>) -> Result<i32> {
    let Some(path) = runlog::find(&ctx.dirs().logs, slug) else {
        match slug {
            Some(s) => {
                bail!("no log for {s} in {}: logs are kept on the device that ran the job", ctx.dirs().logs.display())
            }
            None => bail!("no logs yet in {}", ctx.dirs().logs.display()),
        }
    };
    let text = std::fs::read_to_string(&path)?;
    eprintln!("{}", path.display());
    print!("{text}");
    Ok(exit::OK)
}
