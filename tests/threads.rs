//! `threads=`: bounded above, and pools do not pile up. Every call with
//! `threads = Some(n)` used to cache an `n`-thread pool per calling thread
//! forever (`n = 1..=100` from one caller left 5 050 threads alive), and a
//! huge `n` started threads until the system gave out.

mod common;

use common::Rng;
use q2key::parallel::{install, MAX_IDLE_THREADS, MAX_THREADS};
use q2key::{code_width, encode, Error};
use std::time::{Duration, Instant};

/// Threads of this process right now (Linux).
fn live_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Waits (dropped pools' threads exit asynchronously) until at most `bound`
/// threads are alive, and returns the last count seen.
fn settle_at_most(bound: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = live_threads();
        if live <= bound || Instant::now() > deadline {
            return live;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Enough rows that `encode` splits them into parallel tasks.
const ROWS: usize = 20_000;
const DIM: usize = 8;

struct Encoded {
    codes: Vec<u8>,
    keys: Vec<u64>,
    transitions: Vec<u32>,
}

fn encode_on(threads: Option<usize>, x: &[f32]) -> Encoded {
    let mut e = Encoded {
        codes: vec![0; ROWS * code_width(DIM)],
        keys: vec![0; ROWS],
        transitions: vec![0; ROWS],
    };
    install(threads, || {
        encode(x, DIM, None, &mut e.codes, &mut e.keys, &mut e.transitions)
    })
    .expect("threads within the cap")
    .expect("finite input encodes");
    e
}

fn assert_same(got: &Encoded, want: &Encoded, what: &str) {
    assert!(
        got.codes == want.codes && got.keys == want.keys && got.transitions == want.transitions,
        "{what}: results differ from threads=None"
    );
}

fn value_error_arg(err: Error) -> &'static str {
    match err {
        Error::Value { arg, .. } => arg,
        other => panic!("expected a Value error, got {other:?}"),
    }
}

#[test]
fn threads_above_the_cap_is_a_value_error_before_any_thread_starts() {
    let before = live_threads();
    for n in [MAX_THREADS + 1, 1 << 40, usize::MAX] {
        let started = Instant::now();
        let err = install(Some(n), || unreachable!("must not run")).unwrap_err();
        assert!(err.to_string().contains(&format!("at most {MAX_THREADS}")), "{err}");
        assert_eq!(value_error_arg(err), "threads");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "threads={n} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(value_error_arg(install(Some(0), || ()).unwrap_err()), "threads");
    assert!(live_threads() <= before + 1, "a rejected threads= started threads");
    // The cap itself runs.
    assert_eq!(
        install(Some(MAX_THREADS), rayon::current_num_threads).unwrap(),
        MAX_THREADS
    );
}

#[test]
fn many_thread_counts_leave_a_bounded_number_of_threads_and_the_same_results() {
    let mut rng = Rng::new(31);
    let x: Vec<f32> = (0..ROWS * DIM).map(|_| rng.gaussian() as f32).collect();
    let want = encode_on(None, &x);
    let baseline = live_threads();
    // The idle pools, the global pool and a little slack for the harness.
    let bound = baseline + MAX_IDLE_THREADS + 16;

    for n in 1..=100 {
        assert_same(&encode_on(Some(n), &x), &want, &format!("one caller, threads={n}"));
    }
    let live = settle_at_most(bound);
    assert!(
        live <= bound,
        "one caller, threads=1..=100: {live} threads alive, bound {bound}"
    );

    // Several callers at once, each leasing its own pools.
    std::thread::scope(|s| {
        for caller in 0..4 {
            let (x, want) = (&x, &want);
            s.spawn(move || {
                for i in 0..40 {
                    let n = 1 + (i * 7 + caller * 13) % 40;
                    assert_same(&encode_on(Some(n), x), want, &format!("caller {caller}, threads={n}"));
                }
            });
        }
    });
    let live = settle_at_most(bound);
    assert!(live <= bound, "four callers: {live} threads alive, bound {bound}");
}

/// Two callers asking for one thread each run at the same time, each on its
/// own pool (a shared one-thread pool would make the second wait).
#[test]
fn concurrent_one_thread_calls_do_not_queue() {
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| install(Some(1), || barrier.wait()).expect("one thread"));
        }
    });
}
