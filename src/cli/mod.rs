//! The command line: the arguments ([`args`]), one module per subcommand,
//! and [`dispatch`], which runs the one named.

mod args;
mod common;
pub(crate) mod demo;
mod desk;
mod evaluate;
mod explain;
mod extract;
mod model_card;
mod replay;
mod run;
mod signals;
mod simulate;
mod train;

pub(crate) use args::Cli;

use anyhow::Result;
use args::{Command, DeskCommand, OutcomesCommand, UserCommand};
use std::io::Write;

/// Run the subcommand `cli` names.
pub(crate) fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo {
            seed,
            businesses,
            days,
            metrics_addr,
            desk,
        } => {
            let opts = demo::DemoOptions {
                seed,
                businesses,
                days,
                metrics_addr,
                desk,
            };
            let mut stdout = std::io::stdout().lock();
            demo::run(&opts, |line| {
                let _ = writeln!(stdout, "{line}");
            })?;
            Ok(())
        }
        Command::Run {
            config,
            create_topics,
        } => run::run(&config, create_topics),
        Command::Extract { lexicons } => extract::run(lexicons.as_deref()),
        Command::Replay {
            input,
            out,
            config,
            outcomes,
        } => replay::run(&input, &out, config.as_deref(), outcomes.as_deref()),
        Command::Explain {
            business,
            input,
            domain,
            flag,
            config,
            outcomes,
        } => explain::run(
            &business,
            &input,
            domain.as_deref(),
            flag.as_deref(),
            config.as_deref(),
            outcomes.as_deref(),
        ),
        Command::Simulate(args) => simulate::run(&args),
        Command::Train {
            reviews,
            inspections,
            domain,
            out,
            report,
            version,
            seed,
            fit_share,
            folds,
            history,
            features,
            prior,
        } => train::run(
            &reviews,
            &inspections,
            &domain,
            &out,
            report.as_deref(),
            &version,
            seed,
            fit_share,
            folds,
            history,
            &features,
            &prior,
        ),
        Command::EvalSignals {
            set,
            errors,
            lexicon_only,
            statements,
            bootstrap,
        } => signals::eval_signals(&set, errors, lexicon_only, statements.as_deref(), bootstrap),
        Command::FitSignals {
            set,
            out,
            version,
            folds,
            bits,
            l1,
            l2,
            alpha,
            epochs,
            seed,
        } => signals::fit_signals(
            &set,
            out.as_deref(),
            &version,
            reviewguard::offline::fit_signals::FitOptions {
                bits,
                l1,
                l2,
                alpha,
                epochs,
                folds,
                seed,
                ..Default::default()
            },
        ),
        Command::Desk { config, action } => match action {
            None => desk::serve(&config),
            Some(DeskCommand::User {
                action:
                    UserCommand::Add {
                        name,
                        role,
                        region,
                        password_file,
                        replace,
                    },
            }) => desk::user_add(&config, &name, &role, &region, &password_file, replace),
            Some(DeskCommand::User {
                action: UserCommand::List,
            }) => desk::user_list(&config),
            Some(DeskCommand::User {
                action: UserCommand::Remove { name },
            }) => desk::user_remove(&config, &name),
            Some(DeskCommand::Audit { after, limit, json }) => {
                desk::audit(&config, after, limit, json)
            }
        },
        Command::Outcomes {
            action:
                OutcomesCommand::Export {
                    config,
                    out,
                    from_topic,
                },
        } => desk::export(&config, &out, from_topic),
        Command::Evaluate {
            reviews,
            inspections,
            model,
            report,
            json,
            truth,
        } => evaluate::run(
            &reviews,
            &inspections,
            &model,
            report.as_deref(),
            json,
            truth.as_deref(),
        ),
    }
}
