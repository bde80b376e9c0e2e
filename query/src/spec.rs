//! An algorithm with its parameters, written `name[:key=value]*`, e.g. `bmp`, `bmp:alpha=0.9`,
//! `bmp:alpha=0.8:beta=0.5`, `sp:mu=0.9:eta=0.8`.

use std::fmt;
use std::str::FromStr;

use bmp_index::Index;

use crate::bmp::{Bmp, BmpParams};
use crate::sp::{Sp, SpParams};
use crate::{Algorithm, Searcher};

/// A query processor and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSpec {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// BMP's approximation parameters (only BMP takes them).
    pub bmp: BmpParams,
    /// Superblock pruning's approximation parameters (only `sp` takes them).
    pub sp: SpParams,
}

impl SearchSpec {
    /// The default (rank-safe) parameters of `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        SearchSpec {
            algorithm,
            bmp: BmpParams::default(),
            sp: SpParams::default(),
        }
    }

    /// Whether the processor returns exactly the exhaustive top-k.
    pub fn is_safe(&self) -> bool {
        match self.algorithm {
            Algorithm::Bmp => self.bmp.is_safe(),
            Algorithm::Sp => self.sp.is_safe(),
            _ => true,
        }
    }

    /// A searcher over `index`.
    pub fn searcher<'a>(&self, index: &'a Index) -> Box<dyn Searcher + 'a> {
        match self.algorithm {
            Algorithm::Bmp => Box::new(Bmp::new(index, self.bmp)),
            Algorithm::Sp => Box::new(Sp::new(index, self.sp)),
            other => other.searcher(index),
        }
    }
}

impl fmt::Display for SearchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.name())?;
        if self.algorithm == Algorithm::Bmp {
            if self.bmp.alpha != 1.0 {
                write!(f, ":alpha={}", self.bmp.alpha)?;
            }
            if self.bmp.beta != 1.0 {
                write!(f, ":beta={}", self.bmp.beta)?;
            }
        }
        if self.algorithm == Algorithm::Sp {
            if self.sp.mu != 1.0 {
                write!(f, ":mu={}", self.sp.mu)?;
            }
            if self.sp.eta != 1.0 {
                write!(f, ":eta={}", self.sp.eta)?;
            }
        }
        Ok(())
    }
}

impl FromStr for SearchSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let mut spec = SearchSpec::new(name.parse()?);
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{s:?}: expected key=value after ':', got {part:?}"))?;
            let v: f32 = value
                .parse()
                .map_err(|_| format!("{s:?}: {key} must be a number, got {value:?}"))?;
            match (spec.algorithm, key) {
                (Algorithm::Bmp, "alpha") => spec.bmp.alpha = v,
                (Algorithm::Bmp, "beta") => spec.bmp.beta = v,
                (Algorithm::Sp, "mu") => spec.sp.mu = v,
                (Algorithm::Sp, "eta") => spec.sp.eta = v,
                (a, k) => return Err(format!("{s:?}: {a} takes no parameter {k:?}")),
            }
        }
        spec.bmp.validate().map_err(|e| format!("{s:?}: {e}"))?;
        spec.sp.validate().map_err(|e| format!("{s:?}: {e}"))?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s: SearchSpec = "bmp:alpha=0.9:beta=0.5".parse().unwrap();
        assert_eq!(s.algorithm, Algorithm::Bmp);
        assert_eq!(
            s.bmp,
            BmpParams {
                alpha: 0.9,
                beta: 0.5
            }
        );
        assert_eq!(s.to_string(), "bmp:alpha=0.9:beta=0.5");
        assert!(!s.is_safe());
        let s: SearchSpec = "bmp".parse().unwrap();
        assert!(s.is_safe());
        assert_eq!(s.to_string(), "bmp");
        assert!("bmp:alpha=0".parse::<SearchSpec>().is_err());
        assert!("bmp:alpha=1.5".parse::<SearchSpec>().is_err());
        assert!("bmp:gamma=1".parse::<SearchSpec>().is_err());
        assert!("bmp:alpha".parse::<SearchSpec>().is_err());
        assert!("exhaustive:alpha=0.5".parse::<SearchSpec>().is_err());
        let s: SearchSpec = "sp:mu=0.8:eta=0.5".parse().unwrap();
        assert_eq!(s.sp, SpParams { mu: 0.8, eta: 0.5 });
        assert_eq!(s.to_string(), "sp:mu=0.8:eta=0.5");
        assert!(!s.is_safe());
        assert!("sp".parse::<SearchSpec>().unwrap().is_safe());
        assert!("sp:alpha=0.5".parse::<SearchSpec>().is_err());
        assert!("sp:mu=0".parse::<SearchSpec>().is_err());
        assert!("nope".parse::<SearchSpec>().is_err());
    }
}
