//! Choosing where the model runs (CPU or a CUDA GPU) and in which floating-point precision.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{EncoderError, Result};

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU (the default; what tests use).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal. Needs the crate's `cuda` feature.
    Cuda(usize),
}

impl DeviceKind {
    /// Opens the device. Fails with a clear message when CUDA is asked for but the crate was built
    /// without the `cuda` feature, or when the GPU cannot be opened.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(ordinal) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(EncoderError::Device(
                        "CUDA was requested but bmp-encoder was built without the `cuda` feature \
                         (rebuild with `--features cuda`, which needs nvcc)"
                            .into(),
                    ));
                }
                Device::new_cuda(ordinal).map_err(|e| {
                    EncoderError::Device(format!("cannot open CUDA device {ordinal}: {e}"))
                })
            }
        }
    }
}

impl FromStr for DeviceKind {
    type Err = EncoderError;

    /// Parses `cpu`, `cuda` (device 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(DeviceKind::Cuda)
                .ok_or_else(|| EncoderError::InvalidOption {
                    option: "device",
                    message: format!("unknown device `{s}` (expected cpu, cuda or cuda:N)"),
                }),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The floating-point precision of the weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (the default; the only choice on the CPU).
    #[default]
    F32,
    /// IEEE half precision (CUDA only).
    F16,
    /// bfloat16 (CUDA only).
    Bf16,
}

impl Precision {
    /// The candle dtype for this precision.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

impl FromStr for Precision {
    type Err = EncoderError;

    /// Parses `f32`, `f16` or `bf16` (also `float32`, `fp16`, `float16`, `half`, `bfloat16`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "float" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(EncoderError::InvalidOption {
                option: "dtype",
                message: format!("unknown dtype `{s}` (expected f32, f16 or bf16)"),
            }),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

/// Checks the device/precision pair and opens the device: f16 and bf16 are allowed on CUDA only.
pub fn open_device(kind: DeviceKind, precision: Precision) -> Result<(Device, DType)> {
    if kind == DeviceKind::Cpu && precision != Precision::F32 {
        return Err(EncoderError::InvalidOption {
            option: "dtype",
            message: format!("{precision} is only supported on cuda; use f32 on the cpu"),
        });
    }
    Ok((kind.open()?, precision.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceKind>().ok(), Some(DeviceKind::Cpu));
        assert_eq!("CUDA".parse::<DeviceKind>().ok(), Some(DeviceKind::Cuda(0)));
        assert_eq!(
            "cuda:3".parse::<DeviceKind>().ok(),
            Some(DeviceKind::Cuda(3))
        );
        assert!("tpu".parse::<DeviceKind>().is_err());
        assert!("cuda:x".parse::<DeviceKind>().is_err());
        assert_eq!(DeviceKind::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn parses_precisions() {
        assert_eq!("f32".parse::<Precision>().ok(), Some(Precision::F32));
        assert_eq!("fp16".parse::<Precision>().ok(), Some(Precision::F16));
        assert_eq!("bfloat16".parse::<Precision>().ok(), Some(Precision::Bf16));
        assert!("int8".parse::<Precision>().is_err());
    }

    #[test]
    fn half_precision_is_refused_on_cpu() {
        for p in [Precision::F16, Precision::Bf16] {
            let err = open_device(DeviceKind::Cpu, p).unwrap_err().to_string();
            assert!(err.contains("only supported on cuda"), "{err}");
        }
        assert!(open_device(DeviceKind::Cpu, Precision::F32).is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        if candle_core::utils::cuda_is_available() {
            return; // another crate in the build enabled candle's CUDA backend
        }
        let err = open_device(DeviceKind::Cuda(0), Precision::F32)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`cuda` feature"), "{err}");
    }
}
