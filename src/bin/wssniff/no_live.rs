//! Stand-in for `live.rs` in a build without the `live` feature (no
//! libpcap): `wssniff -i IFACE …` and `-D` are still recognised, so they
//! fail with a message saying how to get live capture instead of clap's
//! "unexpected argument".

use super::exit;
use clap::Args;

/// What the live options become without the feature: `-i`/`-D`, and every
/// other word taken as is, so no live flag is refused by clap first.
#[derive(Args, Debug)]
pub(crate) struct LiveArgs {
    /// Live capture on IFACE: not in this build (rebuild with --features live)
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        help_heading = "Live capture"
    )]
    interface: Option<String>,

    /// List the interfaces that can be captured on: not in this build
    #[arg(short = 'D', long = "list-interfaces", help_heading = "Live capture")]
    list_interfaces: bool,

    #[arg(
        value_name = "EXPRESSION",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        hide = true
    )]
    rest: Vec<String>,
}

/// The message for any live capture request in this build.
pub(crate) const NO_LIVE: &str = "this build has no live capture; rebuild with --features live";

/// Refuses live capture with [`NO_LIVE`] (usage error, 2).
pub(crate) fn run(args: LiveArgs) -> u8 {
    if args.interface.is_some() || args.list_interfaces {
        eprintln!("wssniff: {NO_LIVE}");
    } else if !args.rest.is_empty() {
        eprintln!(
            "wssniff: unknown command '{}': give a subcommand (wssniff read FILE); see wssniff --help",
            args.rest.join(" ")
        );
    } else {
        eprintln!(
            "wssniff: nothing to do: give a subcommand (wssniff read FILE); see wssniff --help"
        );
    }
    exit::USAGE
}
