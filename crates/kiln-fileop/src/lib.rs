//! BuildKit's file operations on a mounted root filesystem: COPY, ADD
//! (archives and URLs), heredoc files and WORKDIR directories.
//!
//! Every destination path is resolved inside `dest_root` as if it were `/`
//! (absolute and `..` symlinks included), and trees are then written with
//! no-follow operations, so nothing in the image can make kiln write on the
//! host. Sources are read the same way inside their own root.

mod archive;
mod copy;
mod dest;
mod error;
mod http;
mod owner;
mod place;
mod tree;

pub use copy::{CopyRequest, Kind, Source, copy};
pub use dest::mkdir_p;
pub use error::{Error, Result};
pub use kiln_dockerfile::instructions::Chmod;
pub use owner::{Owner, resolve_chown};
pub use place::{MkfileRequest, mkfile};
pub use tree::CopyStats;
