//! Graph isomorphism with a work bound: colour refinement, then a VF2-style
//! search that maps one vertex at a time.
//!
//! Both graphs are first coloured jointly by label, anchor (a name that must
//! map to the same name) and degree, then by the multiset of their
//! neighbours' colours until the colouring is stable (1-dimensional
//! Weisfeiler-Leman). Different colour counts prove the graphs differ. The
//! search then maps the vertices of the first graph in breadth-first order,
//! each to an unused vertex of the same colour adjacent to the image of an
//! already mapped neighbour, and checks that the edges (with multiplicity)
//! to all mapped vertices agree, backtracking when they do not.
//!
//! We do not use petgraph's VF2 (`algo::isomorphism`) because it cannot be
//! bounded: it has no step budget and no way to stop it from outside, and
//! graph isomorphism has inputs that take exponential time. Here every
//! candidate test is a step; the caller gives a step limit and a closure
//! asked every [`CHECK_EVERY`] steps whether to go on (the CLI checks a
//! deadline there), and the answer is then [`Outcome::Undecided`]. No clock
//! is read here, so tests are deterministic.

use std::collections::BTreeMap;

/// How often (in steps) the budget's closure is asked.
pub const CHECK_EVERY: u64 = 1024;

/// A vertex-labelled undirected multigraph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The label of each vertex (its kind); labels must match.
    pub labels: Vec<String>,
    /// A key per vertex that must map to the vertex with the same key.
    pub anchors: Vec<Option<String>>,
    /// Neighbours with edge multiplicity, sorted by neighbour.
    adjacency: Vec<Vec<(usize, u32)>>,
}

impl Graph {
    /// Adds a vertex and returns its index.
    pub fn add_vertex(&mut self, label: impl Into<String>, anchor: Option<String>) -> usize {
        self.labels.push(label.into());
        self.anchors.push(anchor);
        self.adjacency.push(Vec::new());
        self.labels.len() - 1
    }

    /// Adds an edge (again to raise its multiplicity).
    pub fn add_edge(&mut self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let list = &mut self.adjacency[from];
            match list.binary_search_by_key(&to, |(n, _)| *n) {
                Ok(k) => list[k].1 += 1,
                Err(k) => list.insert(k, (to, 1)),
            }
            if a == b {
                break;
            }
        }
    }

    /// Number of vertices.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the graph has no vertex.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn multiplicity(&self, a: usize, b: usize) -> u32 {
        let list = &self.adjacency[a];
        list.binary_search_by_key(&b, |(n, _)| *n).map(|k| list[k].1).unwrap_or(0)
    }

    fn degree(&self, v: usize) -> u32 {
        self.adjacency[v].iter().map(|(_, m)| m).sum()
    }
}

/// How much work an answer may take.
pub struct Budget<'a> {
    /// Most candidate tests (and refinement work) before giving up.
    pub max_steps: u64,
    /// Asked every [`CHECK_EVERY`] steps with the steps so far; `false` stops.
    pub keep_going: Option<&'a mut dyn FnMut(u64) -> bool>,
}

impl Budget<'_> {
    /// A budget of `max_steps` steps and no closure.
    pub fn steps(max_steps: u64) -> Budget<'static> {
        Budget { max_steps, keep_going: None }
    }
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// For each vertex of the second graph, its image in the first.
    Isomorphic(Vec<usize>),
    /// Why they are not isomorphic.
    NotIsomorphic(String),
    /// The budget ran out after this many steps.
    Undecided(u64),
}

struct Counter<'b, 'a> {
    steps: u64,
    budget: &'b mut Budget<'a>,
}

impl Counter<'_, '_> {
    /// Counts `n` steps; `false` when the budget is exhausted.
    fn spend(&mut self, n: u64) -> bool {
        let before = self.steps;
        self.steps += n;
        if self.steps > self.budget.max_steps {
            return false;
        }
        if before / CHECK_EVERY != self.steps / CHECK_EVERY
            && let Some(f) = self.budget.keep_going.as_mut()
        {
            return f(self.steps);
        }
        true
    }
}

/// Decides whether `g` and `h` are isomorphic within `budget`.
pub fn isomorphism(g: &Graph, h: &Graph, budget: &mut Budget<'_>) -> Outcome {
    let mut counter = Counter { steps: 0, budget };
    if g.len() != h.len() {
        return Outcome::NotIsomorphic(format!("the layout has {} vertices, the view {}", g.len(), h.len()));
    }
    let (cg, ch) = match refine(g, h, &mut counter) {
        Ok(colours) => colours,
        Err(outcome) => return outcome,
    };
    search(g, h, &cg, &ch, &mut counter)
}

type Signature = (String, Option<String>, u32);

/// Joint colour refinement; `Err` holds the answer when it is already known.
fn refine(g: &Graph, h: &Graph, counter: &mut Counter<'_, '_>) -> Result<(Vec<u32>, Vec<u32>), Outcome> {
    let mut ids: BTreeMap<Signature, u32> = BTreeMap::new();
    let mut initial = |graph: &Graph| -> Vec<u32> {
        (0..graph.len())
            .map(|v| {
                let sig = (graph.labels[v].clone(), graph.anchors[v].clone(), graph.degree(v));
                let next = ids.len() as u32;
                *ids.entry(sig).or_insert(next)
            })
            .collect()
    };
    let mut cg = initial(g);
    let mut ch = initial(h);
    if let Some(colour) = first_difference(&cg, &ch) {
        let (label, anchor, degree) = ids.iter().find(|(_, id)| **id == colour).map(|(s, _)| s.clone()).expect("known");
        let count = |c: &[u32]| c.iter().filter(|x| **x == colour).count();
        let what = match anchor {
            Some(name) => format!("`{name}` ({label} with {degree} interface(s))"),
            None => format!("{label}(s) with {degree} interface(s)"),
        };
        return Err(Outcome::NotIsomorphic(format!("the layout has {} {what}, the view {}", count(&cg), count(&ch))));
    }
    let mut classes = ids.len();
    for round in 1.. {
        let mut ids: BTreeMap<(u32, Vec<(u32, u32)>), u32> = BTreeMap::new();
        let mut next = |graph: &Graph, colours: &[u32], counter: &mut Counter<'_, '_>| -> Option<Vec<u32>> {
            let mut out = Vec::with_capacity(graph.len());
            for v in 0..graph.len() {
                if !counter.spend(1 + graph.adjacency[v].len() as u64) {
                    return None;
                }
                let mut around: Vec<(u32, u32)> = graph.adjacency[v].iter().map(|(n, m)| (colours[*n], *m)).collect();
                around.sort_unstable();
                let n = ids.len() as u32;
                out.push(*ids.entry((colours[v], around)).or_insert(n));
            }
            Some(out)
        };
        let Some(ng) = next(g, &cg, counter) else {
            return Err(Outcome::Undecided(counter.steps));
        };
        let Some(nh) = next(h, &ch, counter) else {
            return Err(Outcome::Undecided(counter.steps));
        };
        if first_difference(&ng, &nh).is_some() {
            return Err(Outcome::NotIsomorphic(format!(
                "they differ in how their vertices are connected (found after {round} round(s) of comparing \
                 neighbourhoods)"
            )));
        }
        cg = ng;
        ch = nh;
        if ids.len() == classes {
            break;
        }
        classes = ids.len();
    }
    Ok((cg, ch))
}

/// A colour whose count differs between the two colourings.
fn first_difference(a: &[u32], b: &[u32]) -> Option<u32> {
    let mut counts: BTreeMap<u32, i64> = BTreeMap::new();
    for c in a {
        *counts.entry(*c).or_default() += 1;
    }
    for c in b {
        *counts.entry(*c).or_default() -= 1;
    }
    counts.into_iter().find(|(_, n)| *n != 0).map(|(c, _)| c)
}

/// Breadth-first order of `g`, each component started at a vertex of the
/// rarest colour; with each vertex, an earlier neighbour if it has one.
fn order(g: &Graph, colours: &[u32]) -> Vec<(usize, Option<usize>)> {
    let mut size: BTreeMap<u32, usize> = BTreeMap::new();
    for c in colours {
        *size.entry(*c).or_default() += 1;
    }
    let mut starts: Vec<usize> = (0..g.len()).collect();
    starts.sort_by_key(|v| (size[&colours[*v]], *v));
    let mut seen = vec![false; g.len()];
    let mut out = Vec::with_capacity(g.len());
    for s in starts {
        if seen[s] {
            continue;
        }
        seen[s] = true;
        let mut queue = std::collections::VecDeque::from([(s, None)]);
        while let Some((v, parent)) = queue.pop_front() {
            out.push((v, parent));
            for (n, _) in &g.adjacency[v] {
                if !seen[*n] {
                    seen[*n] = true;
                    queue.push_back((*n, Some(v)));
                }
            }
        }
    }
    out
}

fn search(g: &Graph, h: &Graph, cg: &[u32], ch: &[u32], counter: &mut Counter<'_, '_>) -> Outcome {
    let order = order(g, cg);
    let mut by_colour: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (v, c) in ch.iter().enumerate() {
        by_colour.entry(*c).or_default().push(v);
    }
    let mut g_to_h: Vec<Option<usize>> = vec![None; g.len()];
    let mut h_used = vec![false; h.len()];
    // For each depth: the candidates and the next one to try.
    let mut frames: Vec<(Vec<usize>, usize)> = Vec::with_capacity(order.len());
    let candidates = |depth: usize, g_to_h: &[Option<usize>], h_used: &[bool]| -> Vec<usize> {
        let (v, parent) = order[depth];
        match parent {
            Some(p) => {
                let image = g_to_h[p].expect("parents are mapped first");
                h.adjacency[image].iter().map(|(n, _)| *n).filter(|n| !h_used[*n] && ch[*n] == cg[v]).collect()
            }
            None => {
                by_colour.get(&cg[v]).map(|l| l.iter().copied().filter(|n| !h_used[*n]).collect()).unwrap_or_default()
            }
        }
    };
    if order.is_empty() {
        return Outcome::Isomorphic(Vec::new());
    }
    if !counter.spend(1) {
        return Outcome::Undecided(counter.steps);
    }
    frames.push((candidates(0, &g_to_h, &h_used), 0));
    while let Some(depth) = frames.len().checked_sub(1) {
        let (v, _) = order[depth];
        // Undo this depth's previous choice before trying the next one.
        if let Some(previous) = g_to_h[v].take() {
            h_used[previous] = false;
        }
        let (list, next) = &mut frames[depth];
        let Some(&candidate) = list.get(*next) else {
            frames.pop();
            continue;
        };
        *next += 1;
        if !counter.spend(1 + g.adjacency[v].len() as u64) {
            return Outcome::Undecided(counter.steps);
        }
        if !feasible(g, h, v, candidate, &g_to_h, &h_used) {
            continue;
        }
        g_to_h[v] = Some(candidate);
        h_used[candidate] = true;
        if depth + 1 == order.len() {
            let mut h_to_g = vec![0; h.len()];
            for (gv, hv) in g_to_h.iter().enumerate() {
                h_to_g[hv.expect("all mapped")] = gv;
            }
            return Outcome::Isomorphic(h_to_g);
        }
        let list = candidates(depth + 1, &g_to_h, &h_used);
        if !counter.spend(list.len() as u64) {
            return Outcome::Undecided(counter.steps);
        }
        frames.push((list, 0));
    }
    Outcome::NotIsomorphic(format!(
        "no mapping of the view onto the layout keeps every connection (searched completely in {} steps)",
        counter.steps
    ))
}

/// Whether mapping `v` to `c` keeps every edge to the vertices mapped so far.
fn feasible(g: &Graph, h: &Graph, v: usize, c: usize, g_to_h: &[Option<usize>], h_used: &[bool]) -> bool {
    let mut mapped = 0;
    for (n, m) in &g.adjacency[v] {
        if let Some(image) = g_to_h[*n] {
            if h.multiplicity(c, image) != *m {
                return false;
            }
            mapped += 1;
        }
    }
    let mapped_in_h = h.adjacency[c].iter().filter(|(n, _)| h_used[*n]).count();
    mapped == mapped_in_h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(n: usize) -> Graph {
        let mut g = Graph::default();
        for _ in 0..n {
            g.add_vertex("v", None);
        }
        for i in 0..n {
            g.add_edge(i, (i + 1) % n);
        }
        g
    }

    #[test]
    fn regular_graphs_that_refinement_cannot_separate_are_decided_by_search() {
        // A 6-cycle and two triangles: same degrees, refinement is stuck.
        let mut two = Graph::default();
        for _ in 0..6 {
            two.add_vertex("v", None);
        }
        for (a, b) in [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)] {
            two.add_edge(a, b);
        }
        match isomorphism(&cycle(6), &two, &mut Budget::steps(10_000)) {
            Outcome::NotIsomorphic(why) => assert!(why.contains("searched completely"), "{why}"),
            other => panic!("{other:?}"),
        }
        let Outcome::Isomorphic(map) = isomorphism(&cycle(6), &cycle(6), &mut Budget::steps(10_000)) else {
            panic!("a cycle is itself");
        };
        assert_eq!(map.len(), 6);
    }

    #[test]
    fn the_budget_gives_a_clear_undecided_and_the_closure_can_stop_it() {
        let outcome = isomorphism(&cycle(50), &cycle(50), &mut Budget::steps(10));
        assert!(matches!(outcome, Outcome::Undecided(s) if s > 10), "{outcome:?}");
        let mut asked = 0;
        let mut stop = |_steps: u64| {
            asked += 1;
            false
        };
        let outcome =
            isomorphism(&cycle(2000), &cycle(2000), &mut Budget { max_steps: u64::MAX, keep_going: Some(&mut stop) });
        assert!(matches!(outcome, Outcome::Undecided(s) if s >= CHECK_EVERY), "{outcome:?}");
        assert_eq!(asked, 1);
    }

    #[test]
    fn anchors_and_multiplicity_constrain_the_match() {
        let mut a = Graph::default();
        let x = a.add_vertex("computer", Some("x".into()));
        let y = a.add_vertex("computer", None);
        let s = a.add_vertex("substrate", None);
        a.add_edge(x, s);
        a.add_edge(x, s);
        a.add_edge(y, s);
        let mut b = Graph::default();
        let y2 = b.add_vertex("computer", None);
        let s2 = b.add_vertex("substrate", None);
        let x2 = b.add_vertex("computer", Some("x".into()));
        b.add_edge(y2, s2);
        b.add_edge(x2, s2);
        b.add_edge(x2, s2);
        assert_eq!(isomorphism(&a, &b, &mut Budget::steps(1000)), Outcome::Isomorphic(vec![y, s, x]));
        // The anchored vertex now has one edge, the free one two.
        let mut c = Graph::default();
        let y3 = c.add_vertex("computer", None);
        let s3 = c.add_vertex("substrate", None);
        let x3 = c.add_vertex("computer", Some("x".into()));
        c.add_edge(y3, s3);
        c.add_edge(y3, s3);
        c.add_edge(x3, s3);
        let Outcome::NotIsomorphic(why) = isomorphism(&a, &c, &mut Budget::steps(1000)) else { panic!() };
        assert!(why.contains("`x` (computer with 2 interface(s))"), "{why}");
    }
}
