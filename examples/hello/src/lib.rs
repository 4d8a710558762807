//! The documentation's Rust Worker code, as a crate: `npm test` checks it for wasm32 (clippy
//! over the workspace), and the tests below fail when a file and its block in the docs differ.
//!
//! - `worker_app.rs` is the README's "A Rust worker", byte for byte;
//! - `binds.rs` is the binds example of `docs/models.md`, byte for byte;
//! - `handlers.rs` is the handlers example of `docs/models.md` (errors with their status, and
//!   workers-rs' router), byte for byte.
//!
//! Every other Rust block of `docs/` is a doctest of the gluebind crate (`src/lib.rs`); the
//! blocks that need a Worker (tagged `rust,ignore` there) must be files of this crate.

#[cfg(target_arch = "wasm32")]
pub mod binds;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
#[cfg(target_arch = "wasm32")]
mod worker_app;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::path::{Path, PathBuf};

    const WORKER_APP: &str = include_str!("worker_app.rs");
    const BINDS: &str = include_str!("binds.rs");
    const HANDLERS: &str = include_str!("handlers.rs");

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The fenced code blocks of `markdown`: (info string, text with a final newline).
    fn blocks(markdown: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut open: Option<(String, String)> = None;
        for line in markdown.lines() {
            match open.as_mut() {
                None => {
                    if let Some(info) = line.strip_prefix("```") {
                        open = Some((info.trim().to_owned(), String::new()));
                    }
                }
                Some((_, text)) if line != "```" => {
                    text.push_str(line);
                    text.push('\n');
                }
                Some(_) => out.extend(open.take()),
            }
        }
        assert!(open.is_none(), "a code block is not closed");
        out
    }

    fn lang(info: &str) -> &str {
        info.split([',', ' ']).next().unwrap_or("")
    }

    #[test]
    fn the_readme_worker_is_this_crates_worker_app() {
        let readme = read(&repo().join("README.md"));
        let rust: Vec<_> = blocks(&readme)
            .into_iter()
            .filter(|(info, _)| lang(info) == "rust")
            .collect();
        assert_eq!(rust.len(), 1, "README.md: one Rust block, the worker");
        assert!(
            rust[0].1 == WORKER_APP,
            "README.md's Rust worker differs from examples/hello/src/worker_app.rs: copy one into the other"
        );
    }

    #[test]
    fn the_binds_example_is_this_crates_binds() {
        let models = read(&repo().join("docs/models.md"));
        assert!(
            blocks(&models).iter().any(|(_, text)| text == BINDS),
            "docs/models.md has no block equal to examples/hello/src/binds.rs: copy one into the other"
        );
    }

    #[test]
    fn the_handlers_example_is_this_crates_handlers() {
        let models = read(&repo().join("docs/models.md"));
        assert!(
            blocks(&models).iter().any(|(_, text)| text == HANDLERS),
            "docs/models.md has no block equal to examples/hello/src/handlers.rs: copy one into the other"
        );
    }

    /// Rustdoc examples that are not compiled (`ignore`) have no place in the crate's sources:
    /// a wasm-only example is a file of this crate instead.
    #[test]
    fn no_rustdoc_example_of_the_crate_is_left_uncompiled() {
        fn visit(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    for (n, line) in read(&path).lines().enumerate() {
                        let line = line.trim_start();
                        let doc = line.starts_with("///") || line.starts_with("//!");
                        if doc && (line.contains("```ignore") || line.contains("```rust,ignore")) {
                            out.push(format!("{}:{}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        visit(&repo().join("src"), &mut found);
        assert!(found.is_empty(), "uncompiled rustdoc examples: {found:?}");
    }

    /// A `rust,ignore` block is not a doctest: it must be a file this crate compiles.
    #[test]
    fn every_ignored_rust_block_of_the_docs_is_compiled_here() {
        for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            for (info, text) in blocks(&read(&path)) {
                if lang(&info) == "rust" && info.contains("ignore") {
                    assert!(
                        text == BINDS || text == WORKER_APP || text == HANDLERS,
                        "{}: a `{info}` block that is neither a doctest nor a file of examples/hello",
                        path.display()
                    );
                }
            }
        }
    }
}
