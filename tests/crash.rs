//! Crash safety: `bmp-index build` killed with SIGKILL at 100 moments while it overwrites an
//! existing index. After each kill the index file is the old one, byte for byte (and answers as
//! before), or the complete new one, and `check` passes; a killed build leaves at most one
//! temporary file, which the next build removes. Writes to a collection directory (add, delete,
//! compact) killed at random moments leave the old collection or the new one, which opens, answers
//! as it should and passes `check`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;

use common::{ok as bmp, BIN};

const BUILD_NEW: [&str; 9] = [
    "build",
    "--input",
    "new.jsonl",
    "--output",
    "idx.bmp",
    "--reorder",
    "bp",
    "--block-size",
    "16",
];

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_index_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::synth(dir, "old", 20000, 20, 1);
    common::synth(dir, "new", 20000, 20, 2);
    // The complete new index, and how long building it takes.
    let start = Instant::now();
    bmp(dir, &BUILD_NEW);
    let build_time = start.elapsed();
    let new = std::fs::read(dir.join("idx.bmp")).unwrap();
    bmp(
        dir,
        &[
            "build",
            "--input",
            "old.jsonl",
            "--output",
            "idx.bmp",
            "--block-size",
            "16",
        ],
    );
    let old = std::fs::read(dir.join("idx.bmp")).unwrap();
    assert_ne!(old, new);
    let search = [
        "search",
        "--index",
        "idx.bmp",
        "--queries",
        "old-q.jsonl",
        "--k",
        "10",
    ];
    let old_answers = bmp(dir, &search);

    let mut rng = 0x9E3779B97F4A7C15u64;
    let (mut kept_old, mut got_new, mut rounds_with_temp) = (0, 0, 0);
    for round in 0..100 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Moments spread over the whole build, and a little past it.
        let at = build_time.mul_f64((rng % 1000) as f64 / 900.0);
        let mut child = Command::new(BIN)
            .args(BUILD_NEW)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        let now = std::fs::read(dir.join("idx.bmp")).unwrap();
        if now == old {
            kept_old += 1;
            if round % 10 == 0 {
                assert_eq!(bmp(dir, &search), old_answers, "round {round}");
            }
        } else {
            assert_eq!(
                now, new,
                "round {round}: the index is neither the old nor the new one"
            );
            got_new += 1;
            // Back to the old index for the next round.
            std::fs::write(dir.join("idx.bmp"), &old).unwrap();
        }
        bmp(dir, &["check", "--index", "idx.bmp"]);
        // A build first removes what killed builds left: temporary files never pile up.
        let temps = temp_files(dir).len();
        assert!(temps <= 1, "round {round}: {temps} temporary files");
        rounds_with_temp += temps;
    }
    eprintln!(
        "100 kills: {kept_old} left the old index, {got_new} the complete new one; \
         {rounds_with_temp} left a temporary file"
    );
    assert!(kept_old > 0, "no kill landed during the build");
    assert!(
        rounds_with_temp > 0,
        "no kill landed while the new index was being written"
    );
    // Killed builds leave temporary files; the next build of the same index removes them.
    bmp(dir, &BUILD_NEW);
    assert_eq!(std::fs::read(dir.join("idx.bmp")).unwrap(), new);
    assert_eq!(temp_files(dir), Vec::<String>::new());
}

/// Copies the files of directory `from` into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The first `n` lines of `from` after skipping `skip`, written to `to`.
fn lines(dir: &Path, from: &str, skip: usize, n: usize, to: &str) {
    let text = std::fs::read_to_string(dir.join(from)).unwrap();
    let part: Vec<&str> = text.lines().skip(skip).take(n).collect();
    std::fs::write(dir.join(to), part.join("\n") + "\n").unwrap();
}

#[test]
fn collection_writes_killed_at_any_moment_leave_the_old_collection_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Two collections with the same ids: adding from the second replaces documents (upserts).
    common::synth(dir, "a", 3000, 20, 1);
    common::synth(dir, "b", 3000, 20, 2);
    for i in 0..3 {
        lines(dir, "a.jsonl", i * 1000, 1000, &format!("a{i}.jsonl"));
        lines(dir, "b.jsonl", i * 1000, 1000, &format!("b{i}.jsonl"));
    }
    let ids: Vec<String> = (0..3000).step_by(7).map(|i| i.to_string()).collect();
    std::fs::write(dir.join("ids.txt"), ids.join("\n")).unwrap();
    bmp(dir, &["add", "--collection", "col", "--input", "a0.jsonl"]);
    bmp(dir, &["add", "--collection", "col", "--input", "a1.jsonl"]);
    let ops: [&[&str]; 6] = [
        &["add", "--input", "b0.jsonl"],
        &["delete", "--ids", "ids.txt"],
        &["add", "--input", "a2.jsonl"],
        &["compact"],
        &["add", "--input", "b1.jsonl"],
        &["add", "--input", "b2.jsonl"],
    ];
    let search = |col: &str| {
        bmp(
            dir,
            &[
                "search",
                "--index",
                col,
                "--queries",
                "a-q.jsonl",
                "--k",
                "10",
            ],
        )
    };
    let mut rng = 0x2545F4914F6CDD1Du64;
    let (mut old, mut new) = (0, 0);
    for round in 0..48 {
        let op = ops[round % ops.len()];
        let args: Vec<&str> = [op[0], "--collection", "col"]
            .into_iter()
            .chain(op[1..].iter().copied())
            .collect();
        // The state the write leads to, from a copy; and how long the write takes.
        let _ = std::fs::remove_dir_all(dir.join("after"));
        copy_dir(&dir.join("col"), &dir.join("after"));
        let mut after_args = args.clone();
        after_args[2] = "after";
        let start = Instant::now();
        bmp(dir, &after_args);
        let took = start.elapsed();
        let expected_new = search("after");
        let expected_old = search("col");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = took.mul_f64((rng % 1000) as f64 / 800.0);
        let mut child = Command::new(BIN)
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        // The collection opens, answers as before the write or as after it, and checks out.
        let now = search("col");
        if now == expected_old {
            old += 1;
        } else {
            assert_eq!(
                now, expected_new,
                "round {round} ({op:?}): neither the old collection nor the new one"
            );
            new += 1;
        }
        bmp(dir, &["check", "--index", "col"]);
    }
    eprintln!("48 killed writes: {old} left the old collection, {new} the new one");
    assert!(old > 0 && new > 0, "{old} old, {new} new");
    // The next writer removes what killed writers left; only named files remain.
    bmp(dir, &["compact", "--collection", "col"]);
    let mut names: Vec<String> = std::fs::read_dir(dir.join("col"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[..3], ["LOCK", "MANIFEST", "WAL"]);
}
