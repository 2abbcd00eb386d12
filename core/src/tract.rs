//! tract as fer-edge runs it, on the host (export checks, quantization) and on the board alike.
//!
//! tract-linalg 0.23.9's Intel AMX int8 matrix kernel (`avx512amx_mmm_i32_8x8`, chosen for int8
//! products on CPUs with AMX: Xeon Sapphire Rapids and later) reads past the end of its packed
//! operand with `tileloadd`: a QLinear int8 model faulted with SIGSEGV there under Electric
//! Fence every time, and it killed the trainer's test binary in CI when the buffer happened to
//! end at an unmapped page (BENCHMARKS.md, session 30). [`guard`] takes AMX int8 out of the
//! instruction sets tract picks kernels from on x86-64 (`TRACT_CPU_ISA=-amx-int8`; the
//! AVX-512/AVX2 kernels do the same arithmetic); a `TRACT_CPU_ISA` in the environment still wins.

/// Sets tract's kernel choices before its first plan; idempotent, cheap after the first call.
pub fn guard() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // x86-64 only: tract panics on a feature of another architecture in TRACT_CPU_ISA
        // ("amx-int8 belongs to x86_64, and this set is aarch64"). Below the environment and
        // above the default: only a knob of the same name given another value elsewhere in the
        // process could refuse it, and none is.
        #[cfg(target_arch = "x86_64")]
        let _ = tract_onnx::tract_core::knobs::set_config_global("TRACT_CPU_ISA", "-amx-int8");
    });
}

/// tract's ONNX loader, after [`guard`]: every ONNX model fer-edge runs is loaded through it.
pub fn onnx() -> tract_onnx::Onnx {
    guard();
    tract_onnx::onnx()
}

#[cfg(test)]
mod tests {
    #[test]
    fn loading_takes_amx_int8_out_of_the_kernels() {
        super::onnx();
        if std::env::var_os("TRACT_CPU_ISA").is_none() {
            let want = cfg!(target_arch = "x86_64").then_some("-amx-int8");
            assert_eq!(tract_linalg::knobs::TRACT_CPU_ISA.get().as_deref(), want);
            // What tract picks kernels from (on ARM: that the setting left it working at all).
            let isa = tract_linalg::isa::native();
            assert!(!isa.has(tract_linalg::isa::Isa::X86_64AmxInt8), "{isa:?}");
        }
    }
}
