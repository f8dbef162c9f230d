//! What only the embedded store has to prove: durability across `kill -9`, a clear refusal of a
//! damaged data file, restarts that keep revisions and compaction, a file that stays bounded under
//! steady churn, and watchers that fall behind without losing events.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use storage::embedded::{EmbeddedConfig, EmbeddedStore, DATA_FILE, WAL_FILE};
use storage::{Error, ListOptions, Precondition, Storage, WatchEvent};

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedConfig::new(dir)).unwrap()
}

const CRASH_DIR_ENV: &str = "STORAGE_CRASH_TEST_DIR";

/// The child half of `acknowledged_writes_survive_sigkill`: writes from 8 tasks forever and
/// reports each acknowledged write on stdout. Does nothing unless started by that test.
#[test]
#[ignore = "started as a child process by acknowledged_writes_survive_sigkill"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(open(Path::new(&dir)));
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/w{writer}/k{i}");
                    let value = format!("{writer}-{i}");
                    let kv = store.create(&key, value.into_bytes()).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {writer}-{i} {}", kv.mod_revision).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_writer", "--exact", "--ignored", "--nocapture"])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    while acked.len() < 2000 {
        let Some(line) = lines.next() else {
            panic!("child exited after {} acknowledged writes", acked.len())
        };
        if let Some(ack) = line.unwrap().strip_prefix("ACK ") {
            acked.push(ack.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-write.
    child.wait().unwrap();
    // Acknowledgements already in the pipe were made before the kill: they count too.
    for line in lines {
        if let Some(ack) = line.unwrap().strip_prefix("ACK ") {
            acked.push(ack.to_string());
        }
    }

    // The log still holds the writes since the last checkpoint. A copy of the directory with a
    // damaged record inside the log must be refused, naming the log.
    let wal = dir.path().join(WAL_FILE);
    let wal_bytes = std::fs::read(&wal).unwrap();
    assert!(
        wal_bytes.len() > 64,
        "the killed writer left records in the log"
    );
    let damaged = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join(DATA_FILE), damaged.path().join(DATA_FILE)).unwrap();
    let mut bad = wal_bytes.clone();
    let first_len = u32::from_be_bytes([bad[0], bad[1], bad[2], bad[3]]) as usize;
    bad[8 + first_len - 1] ^= 0xff; // the last byte of the first record's body
    std::fs::write(damaged.path().join(WAL_FILE), bad).unwrap();
    let refused = expect_refused_naming(damaged.path(), &damaged.path().join(WAL_FILE)).await;
    assert!(refused.contains("checksum"), "{refused}");

    // A record cut short at the end (the process died inside a write) was never acknowledged:
    // it is dropped, and everything before it is kept.
    let mut torn = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    torn.write_all(&[0, 0, 0, 200, 1, 2, 3, 4, 0, 0, 0, 0, 0])
        .unwrap();
    drop(torn);

    let store = open(dir.path());
    let mut highest = 0;
    for ack in &acked {
        let mut parts = ack.split(' ');
        let (key, value, revision) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap().parse::<u64>().unwrap(),
        );
        let kv = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {key} lost"));
        assert_eq!(kv.value, value.as_bytes());
        assert_eq!(kv.mod_revision, revision);
        highest = highest.max(revision);
    }
    let current = store.current_revision().await.unwrap();
    assert!(current >= highest);
    let next = store.create("/crash/after", b"x".to_vec()).await.unwrap();
    assert!(next.mod_revision > current, "revisions continue upward");
}

async fn expect_refused(dir: &Path) -> String {
    expect_refused_naming(dir, &dir.join(DATA_FILE)).await
}

async fn expect_refused_naming(dir: &Path, path: &Path) -> String {
    match EmbeddedStore::open(EmbeddedConfig::new(dir)) {
        Ok(_) => panic!("a damaged data file was accepted"),
        Err(err) => {
            let message = err.to_string();
            eprintln!("refused as expected: {message}");
            assert!(
                message.contains(&path.display().to_string()),
                "the error names the file: {message}"
            );
            message
        }
    }
}

#[tokio::test]
async fn a_garbage_data_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join(DATA_FILE), garbage).unwrap();
    expect_refused(dir.path()).await;

    std::fs::write(dir.path().join(DATA_FILE), b"tiny").unwrap();
    expect_refused(dir.path()).await;
}

async fn store_with_data(dir: &Path) -> u64 {
    let store = open(dir);
    for i in 0..2000 {
        store
            .create(&format!("/d/k{i:05}"), vec![b'v'; 300])
            .await
            .unwrap();
    }
    store.current_revision().await.unwrap()
}

#[tokio::test]
async fn a_truncated_data_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_data(dir.path()).await;
    let path = dir.path().join(DATA_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    expect_refused(dir.path()).await;
}

#[tokio::test]
async fn a_data_file_with_damaged_pages_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_data(dir.path()).await;
    let path = dir.path().join(DATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    // Scribble over the middle of the file, where the tables' pages are.
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    expect_refused(dir.path()).await;
}

#[tokio::test]
async fn restart_keeps_data_revisions_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (old, compacted_at) = {
        let store = open(dir.path());
        let old = store.create("/r/a", b"1".to_vec()).await.unwrap();
        store
            .update("/r/a", b"2".to_vec(), Precondition::None)
            .await
            .unwrap();
        store.create("/r/b", b"b".to_vec()).await.unwrap();
        let at = store.current_revision().await.unwrap();
        store.compact(at).await.unwrap();
        (old, at)
    };
    let store = open(dir.path());
    assert_eq!(store.current_revision().await.unwrap(), compacted_at);
    assert_eq!(store.compacted_revision(), compacted_at);
    assert_eq!(store.get("/r/a").await.unwrap().unwrap().value, b"2");
    let err = store
        .list("/r/", ListOptions::at_revision(old.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    let next = store.create("/r/c", b"c".to_vec()).await.unwrap();
    assert_eq!(next.mod_revision, compacted_at + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_file_stays_bounded_under_steady_churn() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let path = dir.path().join(DATA_FILE);
    let value = vec![b'x'; 2048];
    for i in 0..200 {
        store
            .create(&format!("/churn/k{i}"), value.clone())
            .await
            .unwrap();
    }
    let mut sizes = Vec::new();
    for _round in 0..24 {
        // 2,000 updates spread over 200 keys by 8 writers, then compact everything older.
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..250 {
                    let key = format!("/churn/k{}", (writer * 25 + j) % 200);
                    store
                        .update(&key, value.clone(), Precondition::None)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let now = store.current_revision().await.unwrap();
        store.compact(now).await.unwrap();
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    // 48,000 updates of 2 KiB went through: without compaction the history alone would be over
    // 200 MB (value and previous value per revision). The file must plateau instead.
    eprintln!("data file size after each churn round: {sizes:?}");
    let settled = sizes[7];
    let last = *sizes.last().unwrap();
    assert!(
        last <= settled + settled / 2,
        "file kept growing under churn: {sizes:?}"
    );
    assert!(last < 64 * 1024 * 1024, "file is {last} bytes: {sizes:?}");
    assert_eq!(
        store
            .list("/churn/", ListOptions::default())
            .await
            .unwrap()
            .items
            .len(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_catches_up_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut watch = store.watch("/slow/", 0).await.unwrap();
    // More single-write commits than the in-memory feed holds, while the watcher reads nothing.
    const WRITES: usize = 5000;
    let mut revisions = Vec::new();
    for i in 0..WRITES {
        revisions.push(
            store
                .create(&format!("/slow/k{i}"), b"v".to_vec())
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let mut seen = Vec::new();
    while seen.len() < WRITES {
        match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
            Ok(Some(Ok(WatchEvent::Created(kv)))) => seen.push(kv.mod_revision),
            Ok(Some(Ok(WatchEvent::Progress { .. }))) => {}
            other => panic!("after {} events: {other:?}", seen.len()),
        }
    }
    assert_eq!(seen, revisions, "every event, once, in order");
}

#[tokio::test]
async fn an_idle_watch_gets_progress_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig {
        watch_progress_interval: Duration::from_millis(100),
        ..EmbeddedConfig::new(dir.path())
    })
    .unwrap();
    let written = store.create("/other/x", b"x".to_vec()).await.unwrap();
    let mut watch = store.watch("/idle/", 0).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
        Ok(Some(Ok(WatchEvent::Progress { revision }))) => {
            assert_eq!(revision, written.mod_revision)
        }
        other => panic!("expected a progress report, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_prefix_gets_progress_while_others_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig {
            watch_progress_interval: Duration::from_millis(100),
            ..EmbeddedConfig::new(dir.path())
        })
        .unwrap(),
    );
    let mut watch = store.watch("/quiet/", 0).await.unwrap();
    // Writes elsewhere every 10 ms never leave the watcher idle for a whole interval.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                store
                    .create(&format!("/busy/{i}"), b"x".to_vec())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut highest = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
            Ok(Some(Ok(WatchEvent::Progress { revision }))) => highest = highest.max(revision),
            Ok(other) => panic!("expected only progress reports, got {other:?}"),
            Err(_) => {}
        }
    }
    writer.abort();
    assert!(
        highest >= 20,
        "the quiet watcher's revision did not follow the busy store: {highest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_compactor_keeps_one_interval_of_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let first = store.create("/pc/a", b"1".to_vec()).await.unwrap();
    store
        .update("/pc/a", b"2".to_vec(), Precondition::None)
        .await
        .unwrap();
    let interval = Duration::from_millis(200);
    let compactor =
        storage::compactor::spawn_compactor(store.clone() as Arc<dyn Storage>, interval);
    // The first tick only records the revision; the next one compacts to it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.compacted_revision() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never compacted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let compacted = store.compacted_revision();
    assert!(compacted > first.mod_revision);
    let err = store
        .list("/pc/", ListOptions::at_revision(first.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    assert_eq!(store.get("/pc/a").await.unwrap().unwrap().value, b"2");
    compactor.abort();

    // A zero interval disables compaction, as upstream's `--etcd-compaction-interval=0` does.
    let disabled =
        storage::compactor::spawn_compactor(store.clone() as Arc<dyn Storage>, Duration::ZERO);
    assert!(tokio::time::timeout(Duration::from_secs(1), disabled)
        .await
        .is_ok());
}
