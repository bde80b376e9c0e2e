//! The one place that knows the algorithms: which query processors there are, the parameters each
//! takes, how to name one and how to build it.
//!
//! A [`SearchSpec`] is an algorithm with its parameters. It is written `name[:key=value]*` (`bmp`,
//! `bmp:alpha=0.9`, `bmp:alpha=0.8:beta=0.5`, `sp:mu=0.9:eta=0.8`; [`FromStr`]) or built from a
//! name and `(key, value)` pairs ([`SearchSpec::from_parts`], the HTTP API's form); both go
//! through the same checks. [`ALGORITHMS`] describes each algorithm (its parameters with their
//! meaning, range and default, whether it is rank-safe): the parsers, [`fmt::Display`], the CLI
//! help and the server's parameter checks and OpenAPI document are derived from it.
//! [`SearchSpec::searcher`] is the one factory.
//!
//! Adding an algorithm: a variant of [`SearchSpec`], a row of [`ALGORITHMS`] and an arm of
//! [`SearchSpec::searcher`]; nothing outside this crate names algorithms.

use std::fmt;
use std::mem::discriminant;
use std::str::FromStr;

use bmp_index::Index;

use crate::bmp::{Bmp, BmpParams};
use crate::bmw::Bmw;
use crate::exhaustive::Exhaustive;
use crate::maxscore::MaxScore;
use crate::sp::{Sp, SpParams};
use crate::Searcher;

/// A query processor and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchSpec {
    /// Term-at-a-time scoring of every posting of every query term: the ground truth (see
    /// [`crate::exhaustive`]).
    Exhaustive,
    /// Block-Max Pruning (see [`crate::bmp`]).
    Bmp(BmpParams),
    /// MaxScore, document at a time (see [`crate::maxscore`]).
    MaxScore,
    /// Block-Max WAND over the posting-list chunks (see [`crate::bmw`]).
    Bmw,
    /// Superblock pruning over BMP's blocks (see [`crate::sp`]).
    Sp(SpParams),
}

/// One parameter of an algorithm: a number in `(min, max]`.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    /// Its key, in `name:key=value` and in the HTTP API.
    pub name: &'static str,
    /// What it does.
    pub meaning: &'static str,
    /// The lower end of the accepted range (excluded).
    pub min: f32,
    /// The upper end of the accepted range (included).
    pub max: f32,
    /// Its value when not given. For a rank-safe algorithm the default is rank-safe and other
    /// values approximate.
    pub default: f32,
    /// Where the parameter lives in a spec of its algorithm (`None` for another algorithm's).
    slot: fn(&mut SearchSpec) -> Option<&mut f32>,
}

impl ParamInfo {
    /// Whether `value` lies in the parameter's range.
    pub fn accepts(&self, value: f32) -> bool {
        value > self.min && value <= self.max
    }

    /// The range, written `(min, max]`.
    pub fn range(&self) -> String {
        format!("({}, {}]", self.min, self.max)
    }
}

/// What one algorithm is and takes: a row of [`ALGORITHMS`].
#[derive(Debug, Clone, Copy)]
pub struct AlgorithmInfo {
    /// Its name, as parsed and printed.
    pub name: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Whether it returns exactly the exhaustive top-k with its default parameters.
    pub rank_safe: bool,
    /// The parameters it takes.
    pub params: &'static [ParamInfo],
    /// The algorithm with its default parameters.
    pub default: SearchSpec,
}

impl AlgorithmInfo {
    /// The row of the algorithm called `name`.
    pub fn named(name: &str) -> Option<&'static AlgorithmInfo> {
        ALGORITHMS.iter().find(|a| a.name == name)
    }

    /// Its parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A scale in (0, 1], 1 by default.
const fn scale(
    name: &'static str,
    meaning: &'static str,
    slot: fn(&mut SearchSpec) -> Option<&mut f32>,
) -> ParamInfo {
    ParamInfo {
        name,
        meaning,
        min: 0.0,
        max: 1.0,
        default: 1.0,
        slot,
    }
}

/// Every algorithm, in the order they are listed.
pub const ALGORITHMS: &[AlgorithmInfo] = &[
    AlgorithmInfo {
        name: "exhaustive",
        summary: "scores every posting of every query term: the ground truth",
        rank_safe: true,
        params: &[],
        default: SearchSpec::Exhaustive,
    },
    AlgorithmInfo {
        name: "bmp",
        summary: "Block-Max Pruning: visits blocks of documents in descending upper bound, or scores every posting when k is so large that this costs less",
        rank_safe: true,
        params: &[
            scale(
                "alpha",
                "bound scaling: a block is visited only while alpha times its upper bound can \
                 beat the k-th score",
                |s| match s {
                    SearchSpec::Bmp(p) => Some(&mut p.alpha),
                    _ => None,
                },
            ),
            scale(
                "beta",
                "fraction of the heaviest query terms used for the block bounds",
                |s| match s {
                    SearchSpec::Bmp(p) => Some(&mut p.beta),
                    _ => None,
                },
            ),
        ],
        default: SearchSpec::Bmp(BmpParams {
            alpha: 1.0,
            beta: 1.0,
        }),
    },
    AlgorithmInfo {
        name: "maxscore",
        summary: "MaxScore, document at a time over the posting lists",
        rank_safe: true,
        params: &[],
        default: SearchSpec::MaxScore,
    },
    AlgorithmInfo {
        name: "bmw",
        summary: "Block-Max WAND over the 128-document posting-list chunks",
        rank_safe: true,
        params: &[],
        default: SearchSpec::Bmw,
    },
    AlgorithmInfo {
        name: "sp",
        summary: "superblock pruning: bounds groups of BMP's blocks before the blocks themselves",
        rank_safe: true,
        params: &[
            scale(
                "mu",
                "scaling of the superblock and block maxima",
                |s| match s {
                    SearchSpec::Sp(p) => Some(&mut p.mu),
                    _ => None,
                },
            ),
            scale("eta", "scaling of the superblock means", |s| match s {
                SearchSpec::Sp(p) => Some(&mut p.eta),
                _ => None,
            }),
        ],
        default: SearchSpec::Sp(SpParams { mu: 1.0, eta: 1.0 }),
    },
];

/// Every parameter name some algorithm takes, each once, in table order.
pub fn param_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for p in ALGORITHMS.iter().flat_map(|a| a.params) {
        if !names.contains(&p.name) {
            names.push(p.name);
        }
    }
    names
}

/// The algorithms that take a parameter called `name`.
pub fn param_owners(name: &str) -> impl Iterator<Item = &'static AlgorithmInfo> + '_ {
    ALGORITHMS.iter().filter(move |a| a.param(name).is_some())
}

/// A description of every algorithm and its parameters, for command-line help.
pub fn help() -> String {
    let mut out = String::from(
        "Query processor, written name[:key=value]* (e.g. bmp, bmp:alpha=0.9:beta=0.5). One of:\n",
    );
    for a in ALGORITHMS {
        let safe = match (a.rank_safe, a.params.is_empty()) {
            (false, _) => "approximate",
            (true, true) => "rank-safe",
            (true, false) => "rank-safe with the default parameters",
        };
        out.push_str(&format!("  {}: {} ({safe})\n", a.name, a.summary));
        for p in a.params {
            out.push_str(&format!(
                "      {}: {}, in {}, default {}\n",
                p.name,
                p.meaning,
                p.range(),
                p.default
            ));
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Why a [`SearchSpec`] was refused: the field at fault (`algorithm`, or a parameter's name) and
/// what is wrong with it. Displayed as `"{field} {problem}"`, e.g. `alpha must be in (0, 1], got
/// 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    field: String,
    problem: String,
}

impl SpecError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field at fault: `algorithm`, a parameter's name, or `parameter` for one that is not
    /// written `key=value`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it, to be written after the field's name (`must be in (0, 1], got 0`).
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

impl std::error::Error for SpecError {}

impl Default for SearchSpec {
    /// Rank-safe BMP.
    fn default() -> Self {
        SearchSpec::Bmp(BmpParams::default())
    }
}

impl SearchSpec {
    /// Every algorithm with its default parameters.
    pub const ALL: [SearchSpec; ALGORITHMS.len()] = {
        let mut all = [SearchSpec::Exhaustive; ALGORITHMS.len()];
        let mut i = 0;
        while i < ALGORITHMS.len() {
            all[i] = ALGORITHMS[i].default;
            i += 1;
        }
        all
    };

    /// The algorithm called `name` (the default one when `None`) with the parameters `params`
    /// (`(key, value)`, later keys overriding earlier ones; the others keep their defaults).
    /// Refuses an unknown name, a parameter the algorithm does not take and a value out of its
    /// range, naming the field at fault.
    pub fn from_parts(name: Option<&str>, params: &[(&str, f32)]) -> Result<Self, SpecError> {
        let info = match name {
            None => SearchSpec::default().info(),
            Some(name) => AlgorithmInfo::named(name).ok_or_else(|| {
                let names: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
                SpecError::new(
                    "algorithm",
                    format!("must be one of {}, got {name:?}", names.join(", ")),
                )
            })?,
        };
        let mut spec = info.default;
        for &(key, value) in params {
            let Some(param) = info.param(key) else {
                return Err(not_a_param(info, key));
            };
            if !param.accepts(value) {
                return Err(SpecError::new(
                    key,
                    format!("must be in {}, got {value}", param.range()),
                ));
            }
            *(param.slot)(&mut spec).expect("a parameter of its own algorithm") = value;
        }
        Ok(spec)
    }

    /// The row of [`ALGORITHMS`] describing this algorithm.
    pub fn info(&self) -> &'static AlgorithmInfo {
        ALGORITHMS
            .iter()
            .find(|a| discriminant(&a.default) == discriminant(self))
            .expect("every algorithm has a row in ALGORITHMS")
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The algorithm's parameters with their values.
    pub fn params(&self) -> impl Iterator<Item = (&'static ParamInfo, f32)> {
        let mut spec = *self;
        self.info().params.iter().map(move |p| {
            let value = (p.slot)(&mut spec).map_or(p.default, |v| *v);
            (p, value)
        })
    }

    /// Whether the processor returns exactly the exhaustive top-k: a rank-safe algorithm with
    /// its default parameters.
    pub fn is_safe(&self) -> bool {
        self.info().rank_safe && self.params().all(|(p, v)| v == p.default)
    }

    /// A searcher over `index`.
    pub fn searcher<'a>(&self, index: &'a Index) -> Box<dyn Searcher + 'a> {
        self.searcher_with_threads(index, 1)
    }

    /// A searcher over `index` that answers each query with up to `threads` workers where the
    /// algorithm can (`bmp`: see [`Bmp::with_threads`]); the others run on one thread.
    pub fn searcher_with_threads<'a>(
        &self,
        index: &'a Index,
        threads: usize,
    ) -> Box<dyn Searcher + 'a> {
        match *self {
            SearchSpec::Exhaustive => Box::new(Exhaustive::new(index)),
            SearchSpec::Bmp(params) => Box::new(Bmp::new(index, params).with_threads(threads)),
            SearchSpec::MaxScore => Box::new(MaxScore::new(index)),
            SearchSpec::Bmw => Box::new(Bmw::new(index)),
            SearchSpec::Sp(params) => Box::new(Sp::new(index, params)),
        }
    }
}

/// The error for a parameter `key` that `info`'s algorithm does not take.
fn not_a_param(info: &AlgorithmInfo, key: &str) -> SpecError {
    let quoted = |names: Vec<&str>| {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let owners: Vec<&str> = param_owners(key).map(|a| a.name).collect();
    let problem = match owners.len() {
        0 => {
            let takes: Vec<&str> = info.params.iter().map(|p| p.name).collect();
            let takes = if takes.is_empty() {
                "no parameters".to_string()
            } else {
                takes.join(", ")
            };
            format!(
                "is not a parameter of algorithm {:?} (it takes {takes})",
                info.name
            )
        }
        1 => format!(
            "applies only to algorithm {}, not {:?}",
            quoted(owners),
            info.name
        ),
        _ => format!(
            "applies only to algorithms {}, not {:?}",
            quoted(owners),
            info.name
        ),
    };
    SpecError::new(key, problem)
}

impl fmt::Display for SearchSpec {
    /// `name[:key=value]*`, with the parameters that differ from their defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for (p, value) in self.params() {
            if value != p.default {
                write!(f, ":{}={value}", p.name)?;
            }
        }
        Ok(())
    }
}

impl FromStr for SearchSpec {
    type Err = SpecError;

    /// Parses `name[:key=value]*`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                SpecError::new("parameter", format!("{part:?} is not written key=value"))
            })?;
            let value: f32 = value
                .parse()
                .map_err(|_| SpecError::new(key, format!("must be a number, got {value:?}")))?;
            params.push((key, value));
        }
        SearchSpec::from_parts(Some(name), &params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s: SearchSpec = "bmp:alpha=0.9:beta=0.5".parse().unwrap();
        assert_eq!(
            s,
            SearchSpec::Bmp(BmpParams {
                alpha: 0.9,
                beta: 0.5
            })
        );
        assert_eq!(s.to_string(), "bmp:alpha=0.9:beta=0.5");
        assert!(!s.is_safe());
        let s: SearchSpec = "bmp".parse().unwrap();
        assert!(s.is_safe());
        assert_eq!(s.to_string(), "bmp");
        assert!("bmp:alpha=0".parse::<SearchSpec>().is_err());
        assert!("bmp:alpha=1.5".parse::<SearchSpec>().is_err());
        assert!("bmp:alpha=NaN".parse::<SearchSpec>().is_err());
        assert!("bmp:gamma=1".parse::<SearchSpec>().is_err());
        assert!("bmp:alpha".parse::<SearchSpec>().is_err());
        assert!("bmp:".parse::<SearchSpec>().is_err());
        assert!("exhaustive:alpha=0.5".parse::<SearchSpec>().is_err());
        let s: SearchSpec = "sp:mu=0.8:eta=0.5".parse().unwrap();
        assert_eq!(s, SearchSpec::Sp(SpParams { mu: 0.8, eta: 0.5 }));
        assert_eq!(s.to_string(), "sp:mu=0.8:eta=0.5");
        assert!(!s.is_safe());
        assert!("sp".parse::<SearchSpec>().unwrap().is_safe());
        assert!("sp:alpha=0.5".parse::<SearchSpec>().is_err());
        assert!("sp:mu=0".parse::<SearchSpec>().is_err());
        assert!("nope".parse::<SearchSpec>().is_err());
        assert!("".parse::<SearchSpec>().is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let err = |s: &str| s.parse::<SearchSpec>().unwrap_err();
        let e = err("fast");
        assert_eq!(e.field(), "algorithm");
        assert!(e.problem().contains("bmp") && e.problem().contains("\"fast\""));
        let e = err("bmp:alpha=1.5");
        assert_eq!(e.to_string(), "alpha must be in (0, 1], got 1.5");
        let e = err("bmp:beta=x");
        assert_eq!(e.to_string(), "beta must be a number, got \"x\"");
        let e = err("bmp:mu=0.5");
        assert_eq!(
            e.to_string(),
            "mu applies only to algorithm \"sp\", not \"bmp\""
        );
        let e = err("exhaustive:gamma=0.5");
        assert_eq!(
            e.to_string(),
            "gamma is not a parameter of algorithm \"exhaustive\" (it takes no parameters)"
        );
        let e = err("bmp:gamma=0.5");
        assert_eq!(e.field(), "gamma");
        assert!(e.problem().contains("alpha, beta"));
        assert_eq!(err("bmp:alpha").field(), "parameter");
    }

    #[test]
    fn from_parts_is_the_parser() {
        assert_eq!(
            SearchSpec::from_parts(None, &[]).unwrap(),
            SearchSpec::default()
        );
        assert_eq!(
            SearchSpec::from_parts(None, &[("alpha", 0.9)]).unwrap(),
            "bmp:alpha=0.9".parse().unwrap()
        );
        assert_eq!(
            SearchSpec::from_parts(Some("sp"), &[("eta", 0.5), ("mu", 0.8)]).unwrap(),
            "sp:mu=0.8:eta=0.5".parse().unwrap()
        );
        let e = SearchSpec::from_parts(Some("sp"), &[("eta", 2.0)]).unwrap_err();
        assert_eq!(e.field(), "eta");
        assert_eq!(e.problem(), "must be in (0, 1], got 2");
    }

    #[test]
    fn the_table_matches_the_specs() {
        assert_eq!(SearchSpec::ALL.len(), ALGORITHMS.len());
        assert_eq!(SearchSpec::default(), SearchSpec::Bmp(BmpParams::default()));
        assert_eq!(ALGORITHMS[1].default, SearchSpec::Bmp(BmpParams::default()));
        assert_eq!(ALGORITHMS[4].default, SearchSpec::Sp(SpParams::default()));
        for (a, spec) in ALGORITHMS.iter().zip(SearchSpec::ALL) {
            // One row per variant, each found again from its spec and its name.
            assert_eq!(spec.info().name, a.name);
            assert_eq!(spec.info().summary, a.summary);
            assert_eq!(a.name.parse::<SearchSpec>().unwrap(), spec);
            assert_eq!(spec.to_string(), a.name);
            assert_eq!(spec.is_safe(), a.rank_safe);
            // Every parameter has a slot in its own algorithm's spec, holding its default there.
            let values: Vec<_> = spec.params().map(|(p, v)| (p.name, v)).collect();
            let defaults: Vec<_> = a.params.iter().map(|p| (p.name, p.default)).collect();
            assert_eq!(values, defaults);
            for p in a.params {
                assert!(p.accepts(p.default), "{}", p.name);
                let mut s = spec;
                assert!((p.slot)(&mut s).is_some(), "{}", p.name);
                for mut other in SearchSpec::ALL.into_iter().filter(|o| o.name() != a.name) {
                    assert!((p.slot)(&mut other).is_none(), "{}", p.name);
                }
            }
        }
        let mut names: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALGORITHMS.len());
        assert_eq!(param_names(), ["alpha", "beta", "mu", "eta"]);
        assert!(help().contains("alpha"));
    }
}
