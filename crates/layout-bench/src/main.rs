//! `tomato-layout-bench`: times the layout pipeline on the enterprise
//! example (`examples/layouts/enterprise.xml`, 1,111 computers from one page
//! of topdl) or on a file given as the first argument, and prints the median
//! of each step over the runs. Prints figures, asserts nothing; not part of
//! `scripts/test` (run it with `scripts/bench layout`).

use std::time::{Duration, Instant};

use model::file::topdl::{self, WriteConfig};
use model::layout::convert::{to_topdl, to_topology};
use model::layout::{Budget, ExpandConfig, ViewCheck, check_view, expand};

const ENTERPRISE: &str = include_str!("../../../examples/layouts/enterprise.xml");
const RUNS: usize = 21;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let (name, text) = match std::env::args().nth(1) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            (path, text)
        }
        None => ("examples/layouts/enterprise.xml".to_string(), ENTERPRISE.to_string()),
    };
    let config = ExpandConfig::default();
    let mut times: [Vec<Duration>; 6] = Default::default();
    let mut sizes = (0, 0, 0, 0);
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let doc = topdl::read(&text).unwrap_or_else(|p| panic!("{name}: {}", model::problem::report(&p)));
        let t1 = Instant::now();
        let expansion = expand(&doc, &config).unwrap_or_else(|p| panic!("{name}: {}", model::problem::report(&p)));
        let t2 = Instant::now();
        let imported = to_topology(&expansion.layout);
        let t3 = Instant::now();
        let problems = model::validate(&imported.topology);
        let t4 = Instant::now();
        let written = topdl::write(&to_topdl(&imported.topology), &WriteConfig::default());
        let t5 = Instant::now();
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)].into_iter().enumerate() {
            times[k].push(b - a);
        }
        assert!(problems.is_empty(), "{}", model::problem::report(&problems));
        sizes = (
            expansion.layout.elements.len(),
            expansion.layout.substrates.len(),
            imported.topology.elements.len(),
            written.len(),
        );
    }
    // The full layout checked as a view of the original (isomorphism with
    // every name pinned, then with none: the view renames everything).
    let full = expand(&topdl::read(&text).expect("read above"), &config).expect("expanded above").layout;
    let mut renamed = full.clone();
    for e in &mut renamed.elements {
        e.name = format!("v-{}", e.name);
        for i in &mut e.interfaces {
            for s in &mut i.substrates {
                *s = format!("v-{s}");
            }
        }
    }
    for s in &mut renamed.substrates {
        s.name = format!("v-{}", s.name);
    }
    let doc = topdl::read(&text).expect("read above");
    let check = |view: &topdl::Topdl| {
        let t = Instant::now();
        let answer = check_view(&doc, view, &config, &mut Budget::steps(u64::MAX)).expect("valid");
        assert!(matches!(answer, ViewCheck::Isomorphic(_)), "{answer:?}");
        t.elapsed()
    };
    let pinned = median((0..5).map(|_| check(&full)).collect());
    times[5] = (0..5).map(|_| check(&renamed)).collect();
    let [read, expanded, converted, validated, exported, unnamed] = times.map(median);
    println!("layout: {name}");
    println!(
        "  expanded to {} elements and {} substrates; as a topology {} elements; topdl export {} KiB",
        sizes.0,
        sizes.1,
        sizes.2,
        sizes.3 / 1024
    );
    println!("  median of {RUNS} runs:");
    println!("    read topdl          {}", ms(read));
    println!("    expand regions      {}", ms(expanded));
    println!("    convert to topology {}", ms(converted));
    println!("    validate            {}", ms(validated));
    println!("    export as topdl     {}", ms(exported));
    println!("    read + expand + convert: {}", ms(read + expanded + converted));
    println!("  check-view, full layout as a view (names pinned): {}", ms(pinned));
    println!("  check-view, every name changed (search by structure): {}", ms(unnamed));
}
