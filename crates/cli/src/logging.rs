//! What the libraries log, on stderr: by default each warning as one plain line in the
//! product's words (`warning: …`), with no level column, module path or colour. With
//! `--verbose` or `LIFEBOAT_LOG`, tracing's own format (levels, module paths, the libraries'
//! details); colour only on a terminal, and never with `NO_COLOR` set.

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What is shown without `--verbose`: warnings and errors; the SSH, SMB and FUSE libraries
/// only their own errors.
const QUIET: &str = "warn,russh=error,russh_sftp=error,opendal=error,smb2=off,fuser=error";
/// What `--verbose` adds: what Lifeboat does, and the details of each failure at a location
/// (the storage libraries' own errors, with their requests).
const VERBOSE: &str = "info,lifeboat_storage=debug,russh=warn,russh_sftp=warn,opendal=warn,smb2=warn,fuser=warn";

pub fn init(verbose: bool) {
    let custom = EnvFilter::try_from_env("LIFEBOAT_LOG").ok();
    let detailed = verbose || custom.is_some();
    let filter = custom.unwrap_or_else(|| EnvFilter::new(if verbose { VERBOSE } else { QUIET }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).without_time();
    if detailed {
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        builder.with_ansi(colour).init();
    } else {
        builder.with_ansi(false).event_format(Plain).init();
    }
}

/// One line per event: `warning: MESSAGE` (or `error:`, `note:`), nothing else.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let word = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            _ => "note",
        };
        let mut text = String::new();
        ctx.field_format().format_fields(Writer::new(&mut text), event)?;
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        writeln!(writer, "{word}: {line}")
    }
}
