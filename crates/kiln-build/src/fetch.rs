//! Base images the store lacks: fetched (pulled) before the build starts, through a fetcher
//! the caller provides, so the engine needs no registry client of its own.

use std::collections::BTreeSet;
use std::fmt::Debug;

use kiln_store::Store;

use crate::BuildRequest;
use crate::error::{BuildError, Result};
use crate::layers::BaseImage;

/// The error a fetcher reports: any error, rendered into the build's message.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Puts an image (manifest, config, layers and its tag) into the store, as `kiln pull` does.
pub trait ImageFetcher: Send + Sync + Debug {
    /// Fetches the image `name` (as a Dockerfile names it) into `store`.
    fn fetch(&self, store: &Store, name: &str) -> Result<(), FetchError>;
}

/// Loads the base images of one build, fetching each at most once: those the store lacks, or
/// all of them under `pull`.
pub(crate) struct BaseLoader<'a> {
    store: &'a Store,
    req: &'a BuildRequest,
    fetched: BTreeSet<String>,
}

impl<'a> BaseLoader<'a> {
    pub fn new(store: &'a Store, req: &'a BuildRequest) -> Self {
        Self {
            store,
            req,
            fetched: BTreeSet::new(),
        }
    }

    /// The image `name`, fetched first when needed; without a fetcher, only the store is asked.
    pub fn load(&mut self, name: &str) -> Result<BaseImage> {
        let Some(fetcher) = &self.req.fetcher else {
            return BaseImage::load(self.store, name);
        };
        if self.fetched.contains(name) {
            return BaseImage::load(self.store, name);
        }
        if !self.req.pull {
            match BaseImage::load(self.store, name) {
                Err(BuildError::ImageNotFound(_)) => {}
                found => return found,
            }
        }
        fetcher
            .fetch(self.store, name)
            .map_err(|e| BuildError::PullFailed {
                image: name.to_string(),
                error: e.to_string(),
            })?;
        self.fetched.insert(name.to_string());
        BaseImage::load(self.store, name)
    }
}
