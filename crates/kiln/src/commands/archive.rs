//! `kiln load` and `kiln save`: image archives in and out of the store.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use kiln_export::{ExportImage, ImportedImage};
use kiln_image::Reference;
use kiln_store::{ImageRecord, Lease, PutImage, Store};

use crate::cli::{ArchiveFormat, GlobalArgs, LoadArgs, SaveArgs};

/// Read and write buffer for archive streams.
const IO_BUFFER: usize = 1 << 20;

pub fn load(global: &GlobalArgs, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let source = match &args.input {
        Some(path) => path.display().to_string(),
        None if std::io::stdin().is_terminal() => {
            bail!(
                "requested load from stdin, but stdin is a terminal: use -i FILE or redirect stdin"
            )
        }
        None => "stdin".to_owned(),
    };
    let store = super::store::open(global)?;
    let loaded = super::store::leased(&store, |_| {
        let images = read_archive(&store, args.input.as_deref())
            .with_context(|| format!("loading images from {source}"))?;
        // Every name is checked before any image is recorded.
        let named = images
            .iter()
            .map(|img| Ok((img, image_names(img)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        named
            .into_iter()
            .map(|(img, tags)| record(&store, img, tags))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    for (img, tags) in loaded {
        if tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        tags.iter()
            .for_each(|t| println!("Loaded image: {}", t.familiar_string()));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_archive(store: &Store, input: Option<&Path>) -> anyhow::Result<Vec<ImportedImage>> {
    let content = store.content();
    let images = match input {
        None => kiln_export::import_archive(
            content,
            BufReader::with_capacity(IO_BUFFER, std::io::stdin().lock()),
        )?,
        Some(dir) if dir.is_dir() => kiln_export::import_oci_layout_dir(content, dir)?,
        Some(file) => {
            let file = File::open(file).context("opening the archive")?;
            kiln_export::import_archive(content, BufReader::with_capacity(IO_BUFFER, file))?
        }
    };
    if images.is_empty() {
        bail!("the archive holds no images");
    }
    Ok(images)
}

/// Records an imported image under its names.
fn record(
    store: &Store,
    img: &ImportedImage,
    tags: Vec<Reference>,
) -> anyhow::Result<(ImageRecord, Vec<Reference>)> {
    let replaced = taken_by_others(store, &tags, img);
    let record = store
        .put_image(&PutImage {
            manifest: img.manifest_digest.clone(),
            tags: tags.clone(),
            intermediate: None,
        })
        .with_context(|| format!("recording image {}", img.config_digest))?;
    for (name, old) in replaced {
        println!("The image {name} already exists; the old one ({old}) is now untagged");
    }
    Ok((record, tags))
}

fn image_names(img: &ImportedImage) -> anyhow::Result<Vec<Reference>> {
    img.tags
        .iter()
        .filter(|name| is_image_name(name))
        .map(|name| {
            Reference::parse(name).with_context(|| format!("image name {name:?} in the archive"))
        })
        .collect()
}

/// Names that point at another image now, with that image's ID.
fn taken_by_others(
    store: &Store,
    tags: &[Reference],
    img: &ImportedImage,
) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| {
            let old = store.resolve(&t.to_string()).ok()?;
            (old.id != img.config_digest).then(|| (t.familiar_string(), old.id.to_string()))
        })
        .collect()
}

/// An OCI `ref.name` such as `latest` or `1.0` is a tag within the layout, not an image name.
fn is_image_name(name: &str) -> bool {
    name.contains(':') || name.contains('/')
}

pub fn save(global: &GlobalArgs, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let output = args.output.as_deref().filter(|p| *p != Path::new("-"));
    if output.is_none() && std::io::stdout().is_terminal() {
        bail!("refusing to write an image archive to a terminal: use -o FILE or redirect stdout");
    }
    let store = super::store::open(global)?;
    super::store::leased(&store, |lease| {
        let images = plan(&store, lease, &args.images)?;
        write_archive(&store, args, output, &images)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn write_archive(
    store: &Store,
    args: &SaveArgs,
    output: Option<&Path>,
    images: &[ExportImage],
) -> anyhow::Result<()> {
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match args.format {
            ArchiveFormat::Docker => {
                kiln_export::export_docker_archive(store.content(), images, &mut *out)
            }
            ArchiveFormat::Oci => {
                kiln_export::export_oci_archive(store.content(), images, &mut *out)
            }
        }
        .with_context(|| format!("saving {}", args.images.join(", ")))?;
        out.flush().context("writing the archive")
    };
    match output {
        Some(path) => write_file(path, write),
        None => write(&mut BufWriter::with_capacity(
            IO_BUFFER,
            std::io::stdout().lock(),
        )),
    }
}

/// The images to save, with the tags each argument names (none when named by ID); their blobs
/// are protected from a concurrent `rmi` or prune until the archive is written.
fn plan(store: &Store, lease: &Lease, names: &[String]) -> anyhow::Result<Vec<ExportImage>> {
    let mut images: Vec<ExportImage> = Vec::new();
    for name in names {
        let img = store.resolve(name)?;
        protect(store, lease, &img).with_context(|| format!("saving {name}"))?;
        let tags = tags_named(&img, name);
        match images
            .iter_mut()
            .find(|e| e.manifest_digest == img.manifest_digest)
        {
            Some(existing) => {
                for tag in tags {
                    if !existing.tags.contains(&tag) {
                        existing.tags.push(tag);
                    }
                }
            }
            None => images.push(ExportImage {
                manifest_digest: img.manifest_digest.clone(),
                tags,
            }),
        }
    }
    Ok(images)
}

fn protect(store: &Store, lease: &Lease, img: &ImageRecord) -> anyhow::Result<()> {
    lease.protect_blob(&img.manifest_digest)?;
    lease.protect_blob(&img.id)?;
    for layer in store.image_layers(&img.id)? {
        lease.protect_blob(&layer.digest)?;
    }
    Ok(())
}

/// `name:tag` names one tag; a bare repository name every tag of that repository.
fn tags_named(img: &ImageRecord, name: &str) -> Vec<String> {
    let Ok(named) = Reference::parse_named(name) else {
        return Vec::new();
    };
    let whole_repo = named.tag().is_none() && named.digest().is_none();
    img.tags
        .iter()
        .filter(|t| {
            if whole_repo {
                t.repository() == named.repository()
            } else {
                **t == named
            }
        })
        .map(ToString::to_string)
        .collect()
}

/// Writes a regular file atomically (a temp file renamed into place); writes devices and pipes
/// such as `/dev/null` directly.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let context = || format!("writing {}", path.display());
    if path.exists() && !path.is_file() {
        let file = File::options()
            .write(true)
            .open(path)
            .with_context(context)?;
        return write(&mut BufWriter::with_capacity(IO_BUFFER, file)).with_context(context);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-save-")
        .tempfile_in(&dir)
        .with_context(context)?;
    write(&mut BufWriter::with_capacity(IO_BUFFER, tmp.as_file())).with_context(context)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
        .with_context(context)?;
    tmp.persist(path)
        .map_err(|e| anyhow!(e.error))
        .with_context(context)?;
    Ok(())
}
