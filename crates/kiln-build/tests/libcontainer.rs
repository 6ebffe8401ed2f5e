//! RUN through libcontainer with `/proc/self/exe` as the helper, exactly as the `kiln` binary
//! runs builds: this test binary calls `kiln_executor::helper_main()` first thing.

mod common;

use common::{import_busybox, request, temp_store};
use kiln_build::Runtime;

fn main() {
    kiln_executor::helper_main();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("context");
    std::fs::create_dir_all(&ctx).expect("context dir");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1\nUSER app\nRUN echo \"via-libcontainer uid=$(id -u)\" && touch /tmp/made\n",
    )
    .expect("Dockerfile");
    let mut req = request(&ctx, None, "t/libcontainer:1");
    req.runtime = Runtime::Libcontainer { helper: None };
    let (result, rec) = common::build(&store, &req);
    let result = result.unwrap_or_else(|e| panic!("build through libcontainer failed: {e}"));
    let out = rec.output();
    assert!(out.contains("via-libcontainer uid=1000"), "{out}");
    assert_eq!(result.image.tags.len(), 1);
    println!("test libcontainer_run ... ok");
}
