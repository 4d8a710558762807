//! Commit hooks: callbacks around [`Session::commit`], Flask-SQLAlchemy's
//! `before_models_committed` / `models_committed` signals.

use crate::{model::Change, CommitInfo, Result, Session};
use std::{fmt, rc::Rc};

/// Runs before a commit; an error stops it.
pub(crate) type BeforeCommit = Rc<dyn Fn(&Session, &[Change]) -> Result<()>>;
/// Runs after a commit succeeded.
pub(crate) type AfterCommit = Rc<dyn Fn(&Committed<'_>)>;

/// The hooks of one session factory, in the order they were added.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub before: Vec<BeforeCommit>,
    pub after: Vec<AfterCommit>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before_commit", &self.before.len())
            .field("after_commit", &self.after.len())
            .finish()
    }
}

/// What an after-commit hook receives (see
/// [`SessionFactoryBuilder::after_commit`](crate::SessionFactoryBuilder::after_commit)).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Committed<'a> {
    /// The session that committed (it already starts over on the new committed state).
    pub session: &'a Session,
    /// What the commit wrote, over every bind.
    pub info: CommitInfo,
    /// The model objects committed, in flush order (changes made with plain SQL are not
    /// listed, as in Flask-SQLAlchemy).
    pub changes: &'a [Change],
}
