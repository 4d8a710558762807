//! `npm run migrations:new -- <name>`: the next migration step of the Rust demo, from the
//! difference between its models and `examples/demo/schema.json` (their tables as of the last
//! step). Prints the step to add to `service::migrations`, and writes the new snapshot.

use gluebind::migrate;
use gluebind_demo::service::MODELS;
use std::{fs, path::Path, process::ExitCode};

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: npm run migrations:new -- <step name, e.g. 0002_users_bio>");
        return ExitCode::from(2);
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.json");
    let run = || -> gluebind::Result<String> {
        let now = migrate::snapshot(MODELS)?;
        let Ok(before) = fs::read_to_string(&path) else {
            write(&path, &now);
            return Ok(format!(
                "no snapshot yet: wrote {} (the models as they are; the next change gets a step)",
                path.display()
            ));
        };
        let step = migrate::next_step(&name, MODELS, &before)?;
        if step.is_empty() {
            return Ok("the models match the snapshot: no step to write".to_owned());
        }
        let mut out = String::new();
        if !step.rust.is_empty() {
            out.push_str(&format!(
                "add to service::migrations() in examples/demo/src/service.rs:\n\n    .step({})\n",
                step.rust
            ));
        }
        for note in &step.notes {
            out.push_str(&format!("\nnote: {note}\n"));
        }
        write(&path, &now);
        out.push_str(&format!("\nwrote {}\n", path.display()));
        Ok(out)
    };
    match run() {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, snapshot: &str) {
    if let Err(e) = fs::write(path, format!("{snapshot}\n")) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}
