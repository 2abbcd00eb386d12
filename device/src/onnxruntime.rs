//! onnxruntime as a peer in benchmarks, through its C API loaded at run time (`dlopen`): the
//! same ONNX file run by Microsoft's runtime in the same process as tract, on boards where no
//! Python is at hand (`fer-device bench-models --onnxruntime LIB`; `scripts/arm-cost.sh
//! --onnxruntime` runs it in the aarch64 VM with the library of PyPI's aarch64 wheel).
//!
//! Only what a benchmark needs: a session on one thread with every graph optimisation, one
//! float input, the first output. The library is whatever `libonnxruntime.so` the caller names
//! (the wheels ship one beside their Python module); nothing is linked at build time.
//!
//! ```no_run
//! use fer_device::onnxruntime::OnnxRuntime;
//! let ort = OnnxRuntime::load("libonnxruntime.so.1.31.1".as_ref())?;
//! let mut session = ort.session("models/mini-xception-fer2013/model.onnx".as_ref(), 1)?;
//! let probs = session.run(&[0.1; 64 * 64], &[1, 1, 64, 64])?;
//! # Ok::<(), fer_device::onnxruntime::OrtError>(())
//! ```

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// What can go wrong loading or running onnxruntime.
#[derive(Debug, thiserror::Error)]
pub enum OrtError {
    #[error("{path}: cannot load onnxruntime: {why}")]
    Load { path: PathBuf, why: String },
    #[error("{path}: onnxruntime refused API version {version}")]
    Version { path: PathBuf, version: u32 },
    #[error("{path}: onnxruntime: {what}: {message}")]
    Call { path: PathBuf, what: &'static str, message: String },
    #[error("{path}: input of {len} values does not match the shape {shape:?}")]
    Shape { path: PathBuf, len: usize, shape: Vec<i64> },
}

/// The first C API version: every function used here is in it, and a later library serves it
/// (`OrtApiBase::GetApi` answers any version from 1 to its own; the table only grows).
const API_VERSION: u32 = 1;

/// Positions in `OrtApi` (onnxruntime_c_api.h, "End of Version 1 - DO NOT MODIFY ABOVE").
mod slot {
    pub const GET_ERROR_MESSAGE: usize = 2;
    pub const CREATE_ENV: usize = 3;
    pub const CREATE_SESSION: usize = 7;
    pub const RUN: usize = 9;
    pub const CREATE_SESSION_OPTIONS: usize = 10;
    pub const SET_SESSION_GRAPH_OPTIMIZATION_LEVEL: usize = 23;
    pub const SET_INTRA_OP_NUM_THREADS: usize = 24;
    pub const SET_INTER_OP_NUM_THREADS: usize = 25;
    pub const SESSION_GET_INPUT_NAME: usize = 36;
    pub const SESSION_GET_OUTPUT_NAME: usize = 37;
    pub const CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE: usize = 49;
    pub const GET_TENSOR_MUTABLE_DATA: usize = 51;
    pub const GET_TENSOR_ELEMENT_TYPE: usize = 60;
    pub const GET_TENSOR_SHAPE_ELEMENT_COUNT: usize = 64;
    pub const GET_TENSOR_TYPE_AND_SHAPE: usize = 65;
    pub const CREATE_CPU_MEMORY_INFO: usize = 69;
    pub const ALLOCATOR_FREE: usize = 76;
    pub const GET_ALLOCATOR_WITH_DEFAULT_OPTIONS: usize = 78;
    pub const RELEASE_STATUS: usize = 93;
    pub const RELEASE_MEMORY_INFO: usize = 94;
    pub const RELEASE_SESSION: usize = 95;
    pub const RELEASE_VALUE: usize = 96;
    pub const RELEASE_TENSOR_TYPE_AND_SHAPE_INFO: usize = 99;
    pub const RELEASE_SESSION_OPTIONS: usize = 100;
}

type Status = *mut c_void;
type Handle = *mut c_void;

/// `OrtApiBase`: `GetApi(version)` and `GetVersionString()`.
#[repr(C)]
struct ApiBase {
    get_api: unsafe extern "C" fn(u32) -> *const *const c_void,
    get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// A loaded onnxruntime library (kept loaded for the life of the process: sessions and the
/// environment hold its threads and allocators).
pub struct OnnxRuntime {
    path: PathBuf,
    api: *const *const c_void,
    env: Handle,
    version: String,
}

// SAFETY: the OrtApi table is immutable, and OrtEnv is documented as thread-safe.
unsafe impl Send for OnnxRuntime {}
unsafe impl Sync for OnnxRuntime {}

impl OnnxRuntime {
    /// Loads `libonnxruntime.so` from `path` and creates its environment (warnings and errors
    /// logged).
    ///
    /// # Errors
    /// [`OrtError::Load`] if the file is not a loadable library with `OrtGetApiBase`,
    /// [`OrtError::Version`] if it serves no version-1 API, [`OrtError::Call`] if it cannot
    /// create an environment.
    pub fn load(path: &Path) -> Result<OnnxRuntime, OrtError> {
        let load = |why: String| OrtError::Load { path: path.into(), why };
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| load("NUL in the path".into()))?;
        // SAFETY: dlopen/dlsym/dlerror with valid C strings; the symbol's type is the C API's
        // `const OrtApiBase* OrtGetApiBase(void)`.
        unsafe {
            let lib = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if lib.is_null() {
                return Err(load(dl_error()));
            }
            let sym = libc::dlsym(lib, c"OrtGetApiBase".as_ptr());
            if sym.is_null() {
                return Err(load(format!("no OrtGetApiBase ({})", dl_error())));
            }
            let get_base: unsafe extern "C" fn() -> *const ApiBase = std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                return Err(load("OrtGetApiBase returned nothing".into()));
            }
            let version = CStr::from_ptr(((*base).get_version_string)()).to_string_lossy().into_owned();
            let api = ((*base).get_api)(API_VERSION);
            if api.is_null() {
                return Err(OrtError::Version { path: path.into(), version: API_VERSION });
            }
            let mut ort = OnnxRuntime { path: path.into(), api, env: std::ptr::null_mut(), version };
            let mut env = std::ptr::null_mut();
            let create: unsafe extern "C" fn(c_int, *const c_char, *mut Handle) -> Status = ort.f(slot::CREATE_ENV);
            ort.check("CreateEnv", create(2, c"fer-device".as_ptr(), &mut env))?;
            ort.env = env;
            Ok(ort)
        }
    }

    /// The library's version string (e.g. "1.31.1").
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A session on `model` with `threads` intra-op threads, no inter-op pool and every graph
    /// optimisation (as `scripts/ort_reference.py` and the Python benchmarks configure it).
    ///
    /// # Errors
    /// [`OrtError::Call`] with onnxruntime's message if it cannot load or optimise the model.
    pub fn session(&self, model: &Path, threads: usize) -> Result<Session<'_>, OrtError> {
        let c_model = CString::new(model.as_os_str().as_encoded_bytes())
            .map_err(|_| OrtError::Load { path: model.into(), why: "NUL in the path".into() })?;
        let call = |what, status| self.check_for(model, what, status);
        // SAFETY: each function pointer is called with the C API's signature for its slot, on
        // handles this library created.
        unsafe {
            let mut options = std::ptr::null_mut();
            let create: unsafe extern "C" fn(*mut Handle) -> Status = self.f(slot::CREATE_SESSION_OPTIONS);
            call("CreateSessionOptions", create(&mut options))?;
            let release_options: unsafe extern "C" fn(Handle) = self.f(slot::RELEASE_SESSION_OPTIONS);
            let configured = (|| {
                let level: unsafe extern "C" fn(Handle, c_int) -> Status =
                    self.f(slot::SET_SESSION_GRAPH_OPTIMIZATION_LEVEL);
                call("SetSessionGraphOptimizationLevel", level(options, 99))?;
                let intra: unsafe extern "C" fn(Handle, c_int) -> Status = self.f(slot::SET_INTRA_OP_NUM_THREADS);
                call("SetIntraOpNumThreads", intra(options, threads.max(1) as c_int))?;
                let inter: unsafe extern "C" fn(Handle, c_int) -> Status = self.f(slot::SET_INTER_OP_NUM_THREADS);
                call("SetInterOpNumThreads", inter(options, 1))?;
                let mut session = std::ptr::null_mut();
                let create: unsafe extern "C" fn(Handle, *const c_char, Handle, *mut Handle) -> Status =
                    self.f(slot::CREATE_SESSION);
                call("CreateSession", create(self.env, c_model.as_ptr(), options, &mut session))?;
                Ok(session)
            })();
            release_options(options);
            let mut session = Session {
                ort: self,
                model: model.into(),
                handle: configured?,
                input: CString::default(),
                output: CString::default(),
                memory: std::ptr::null_mut(),
            };
            session.input = session.name(slot::SESSION_GET_INPUT_NAME, "SessionGetInputName")?;
            session.output = session.name(slot::SESSION_GET_OUTPUT_NAME, "SessionGetOutputName")?;
            let info: unsafe extern "C" fn(c_int, c_int, *mut Handle) -> Status = self.f(slot::CREATE_CPU_MEMORY_INFO);
            // OrtDeviceAllocator (0), OrtMemTypeDefault (0): the caller's buffer on the CPU.
            call("CreateCpuMemoryInfo", info(0, 0, &mut session.memory))?;
            Ok(session)
        }
    }

    /// The function in `slot` of the API table, as `F` (a C function pointer type).
    ///
    /// # Safety
    /// `F` must be that slot's signature.
    unsafe fn f<F: Copy>(&self, slot: usize) -> F {
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*const c_void>());
        // SAFETY: the table has every version-1 slot; the caller names the type.
        unsafe { std::mem::transmute_copy(&*self.api.add(slot)) }
    }

    fn check(&self, what: &'static str, status: Status) -> Result<(), OrtError> {
        self.check_for(&self.path, what, status)
    }

    /// `Ok` for a null status; otherwise its message (the status released).
    fn check_for(&self, path: &Path, what: &'static str, status: Status) -> Result<(), OrtError> {
        if status.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status from this library; its message lives until it is released.
        unsafe {
            let message: unsafe extern "C" fn(Status) -> *const c_char = self.f(slot::GET_ERROR_MESSAGE);
            let text = CStr::from_ptr(message(status)).to_string_lossy().into_owned();
            let release: unsafe extern "C" fn(Status) = self.f(slot::RELEASE_STATUS);
            release(status);
            Err(OrtError::Call { path: path.into(), what, message: text })
        }
    }
}

/// The last `dlerror` text.
fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call on this thread.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dlopen error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// One model loaded in onnxruntime.
pub struct Session<'a> {
    ort: &'a OnnxRuntime,
    model: PathBuf,
    handle: Handle,
    input: CString,
    output: CString,
    memory: Handle,
}

impl Session<'_> {
    /// The name of input or output 0 (`slot` is SessionGetInputName or SessionGetOutputName).
    unsafe fn name(&self, slot: usize, what: &'static str) -> Result<CString, OrtError> {
        // SAFETY: the slots' signatures; the default allocator's string is copied, then freed
        // by that allocator.
        unsafe {
            let mut alloc = std::ptr::null_mut();
            let get: unsafe extern "C" fn(*mut Handle) -> Status = self.ort.f(slot::GET_ALLOCATOR_WITH_DEFAULT_OPTIONS);
            self.ort.check_for(&self.model, "GetAllocatorWithDefaultOptions", get(&mut alloc))?;
            let mut name: *mut c_char = std::ptr::null_mut();
            let get: unsafe extern "C" fn(Handle, usize, Handle, *mut *mut c_char) -> Status = self.ort.f(slot);
            self.ort.check_for(&self.model, what, get(self.handle, 0, alloc, &mut name))?;
            let owned = CStr::from_ptr(name).to_owned();
            let free: unsafe extern "C" fn(Handle, *mut c_void) -> Status = self.ort.f(slot::ALLOCATOR_FREE);
            self.ort.check_for(&self.model, "AllocatorFree", free(alloc, name.cast()))?;
            Ok(owned)
        }
    }

    /// Runs the model on one float tensor of `shape` and returns its first output, flattened.
    ///
    /// # Errors
    /// [`OrtError::Shape`] if `input` does not hold `shape`'s values; [`OrtError::Call`] with
    /// onnxruntime's message if the run fails (a shape the model does not take, ...).
    pub fn run(&mut self, input: &[f32], shape: &[i64]) -> Result<Vec<f32>, OrtError> {
        let n: i64 = shape.iter().product();
        if shape.iter().any(|&d| d < 0) || n as usize != input.len() {
            return Err(OrtError::Shape { path: self.model.clone(), len: input.len(), shape: shape.to_vec() });
        }
        let ort = self.ort;
        let call = |what, status| ort.check_for(&self.model, what, status);
        // SAFETY: the slots' signatures; the input value borrows `input` only for this call
        // (released before returning); the output's data is copied before it is released.
        unsafe {
            let create: unsafe extern "C" fn(
                Handle,
                *mut c_void,
                usize,
                *const i64,
                usize,
                c_int,
                *mut Handle,
            ) -> Status = ort.f(slot::CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE);
            let release_value: unsafe extern "C" fn(Handle) = ort.f(slot::RELEASE_VALUE);
            let mut value = std::ptr::null_mut();
            // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT = 1; onnxruntime does not write an input.
            call(
                "CreateTensorWithDataAsOrtValue",
                create(
                    self.memory,
                    input.as_ptr() as *mut c_void,
                    std::mem::size_of_val(input),
                    shape.as_ptr(),
                    shape.len(),
                    1,
                    &mut value,
                ),
            )?;
            let run: unsafe extern "C" fn(
                Handle,
                Handle,
                *const *const c_char,
                *const Handle,
                usize,
                *const *const c_char,
                usize,
                *mut Handle,
            ) -> Status = ort.f(slot::RUN);
            let mut output = std::ptr::null_mut();
            let status = run(
                self.handle,
                std::ptr::null_mut(),
                &self.input.as_ptr(),
                &value,
                1,
                &self.output.as_ptr(),
                1,
                &mut output,
            );
            release_value(value);
            call("Run", status)?;
            let result = (|| {
                let shape_of: unsafe extern "C" fn(Handle, *mut Handle) -> Status =
                    ort.f(slot::GET_TENSOR_TYPE_AND_SHAPE);
                let mut info = std::ptr::null_mut();
                call("GetTensorTypeAndShape", shape_of(output, &mut info))?;
                let count: unsafe extern "C" fn(Handle, *mut usize) -> Status =
                    ort.f(slot::GET_TENSOR_SHAPE_ELEMENT_COUNT);
                let element: unsafe extern "C" fn(Handle, *mut c_int) -> Status = ort.f(slot::GET_TENSOR_ELEMENT_TYPE);
                let (mut len, mut kind) = (0, 0);
                let counted = call("GetTensorShapeElementCount", count(info, &mut len))
                    .and_then(|()| call("GetTensorElementType", element(info, &mut kind)));
                let release_info: unsafe extern "C" fn(Handle) = ort.f(slot::RELEASE_TENSOR_TYPE_AND_SHAPE_INFO);
                release_info(info);
                counted?;
                if kind != 1 {
                    return Err(OrtError::Call {
                        path: self.model.clone(),
                        what: "Run",
                        message: format!("output 0 has element type {kind}, not float (1)"),
                    });
                }
                let data: unsafe extern "C" fn(Handle, *mut *mut c_void) -> Status =
                    ort.f(slot::GET_TENSOR_MUTABLE_DATA);
                let mut p = std::ptr::null_mut();
                call("GetTensorMutableData", data(output, &mut p))?;
                Ok(std::slice::from_raw_parts(p as *const f32, len).to_vec())
            })();
            release_value(output);
            result
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: the session was created by this library and is not used after this.
        unsafe {
            let release: unsafe extern "C" fn(Handle) = self.ort.f(slot::RELEASE_SESSION);
            release(self.handle);
            if !self.memory.is_null() {
                let release: unsafe extern "C" fn(Handle) = self.ort.f(slot::RELEASE_MEMORY_INFO);
                release(self.memory);
            }
        }
    }
}
