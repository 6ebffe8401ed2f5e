#[test]
fn perf() {
    let Ok(layer) = std::env::var("KLAYER") else {
        return;
    };
    let dir = tempfile::tempdir_in("/tmp/exp").unwrap();
    let store = kiln_content::ContentStore::open(dir.path()).unwrap();
    // Build a docker-legacy archive on disk around the big layer.
    let size = std::fs::metadata(&layer).unwrap().len();
    let diff = {
        let mut f = std::fs::File::open(&layer).unwrap();
        let mut w = kiln_content::Sha256Writer::new(std::io::sink());
        std::io::copy(&mut f, &mut w).unwrap();
        w.finish().1
    };
    let config = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[diff.to_string()]}})).unwrap();
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config":"c.json","RepoTags":["big:1"],"Layers":["l/layer.tar"]}]),
    )
    .unwrap();
    let arch = dir.path().join("a.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&arch).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    b.append_data(&mut h, "l/layer.tar", std::fs::File::open(&layer).unwrap())
        .unwrap();
    for (p, d) in [("c.json", &config[..]), ("manifest.json", &manifest[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, d).unwrap();
    }
    b.into_inner().unwrap();
    let t = std::time::Instant::now();
    let imported = kiln_export::import_archive(
        &store,
        std::io::BufReader::new(std::fs::File::open(&arch).unwrap()),
    )
    .unwrap();
    eprintln!("import of {size} bytes: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let out = std::fs::File::create(dir.path().join("out.tar")).unwrap();
    kiln_export::export_docker_archive(
        &store,
        &[kiln_export::ExportImage {
            manifest_digest: imported[0].manifest_digest.clone(),
            tags: vec!["big:1".into()],
        }],
        std::io::BufWriter::new(out),
    )
    .unwrap();
    eprintln!("export: {:?}", t.elapsed());
}
