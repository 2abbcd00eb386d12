//! PyTorch state dicts in the legacy (pre-1.6, non-zip) `torch.save` format, read in Rust: five
//! consecutive pickles (magic number, protocol version, system info, the object, the list of
//! storage keys) followed by each storage as an 8-byte element count and its raw little-endian
//! data. Tensors inside the object are `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, …)` calls whose storage is a persistent id `('storage', type, key, location, numel,
//! view)`. libtorch (and so tch) reads only the zip format; this covers the legacy one for the
//! float tensors a state dict holds.

use std::collections::HashMap;
use std::path::Path;

use super::ImportError;

/// The magic number `torch.save` writes first in the legacy format.
const MAGIC: i128 = 0x1950a86a20f9469cfc6c;

/// A decoded pickle value (just what state dicts use).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    PersId(Box<Value>),
    /// A tensor view of a storage: key, element offset, size, stride, storage type name.
    Tensor {
        key: String,
        offset: usize,
        size: Vec<usize>,
        stride: Vec<usize>,
        dtype: String,
    },
    /// A reduce we do not interpret (kept so the stack stays balanced).
    Opaque,
}

/// A float tensor from a state dict: shape and values (row-major).
#[derive(Debug, Clone)]
pub struct StateTensor {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, m: impl Into<String>) -> ImportError {
        ImportError::format(self.path, format!("at byte {}: {}", self.at, m.into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ImportError> {
        if self.at + n > self.buf.len() {
            return Err(self.err(format!("needs {n} more bytes but the file ends (truncated?)")));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ImportError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ImportError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, ImportError> {
        let start = self.at;
        while self.u8()? != b'\n' {}
        Ok(String::from_utf8_lossy(&self.buf[start..self.at - 1]).into_owned())
    }

    /// Runs one pickle to its STOP and returns the value.
    fn pickle(&mut self) -> Result<Value, ImportError> {
        let mut stack: Vec<Value> = Vec::new();
        let mut marks: Vec<usize> = Vec::new();
        let mut memo: HashMap<u32, Value> = HashMap::new();
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO n
                }
                b'.' => return stack.pop().ok_or_else(|| self.err("STOP on an empty stack")),
                b'(' => marks.push(stack.len()),
                b'N' => stack.push(Value::None),
                0x88 => stack.push(Value::Bool(true)),
                0x89 => stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    stack.push(Value::Int(v as i128))
                }
                b'M' => {
                    let b = self.take(2)?;
                    stack.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i128))
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    stack.push(Value::Int(v as i128))
                }
                0x8a => {
                    // LONG1: n bytes, little-endian two's complement.
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 16 {
                        return Err(self.err("integer wider than 128 bits"));
                    }
                    let mut v: i128 = 0;
                    for (i, byte) in b.iter().enumerate() {
                        v |= (*byte as i128) << (8 * i);
                    }
                    if n > 0 && n < 16 && b[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    stack.push(Value::Int(v))
                }
                b'G' => {
                    let b = self.take(8)?;
                    stack.push(Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    stack.push(Value::Str(s))
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    stack.push(Value::Str(s))
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    stack.push(Value::Str(s))
                }
                b'}' => stack.push(Value::Dict(Vec::new())),
                b']' => stack.push(Value::List(Vec::new())),
                b')' => stack.push(Value::Tuple(Vec::new())),
                b'd' | b'l' | b't' => {
                    let m = marks.pop().ok_or_else(|| self.err("no MARK"))?;
                    let items = stack.split_off(m);
                    stack.push(match op {
                        b't' => Value::Tuple(items),
                        b'l' => Value::List(items),
                        _ => Value::Dict(items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()),
                    })
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if stack.len() < n {
                        return Err(self.err("TUPLE on a short stack"));
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(Value::Tuple(items))
                }
                b'a' => {
                    let v = stack.pop().ok_or_else(|| self.err("APPEND on an empty stack"))?;
                    match stack.last_mut() {
                        Some(Value::List(l)) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let m = marks.pop().ok_or_else(|| self.err("no MARK"))?;
                    let items = stack.split_off(m);
                    match stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        if stack.len() < 2 {
                            return Err(self.err("SETITEM on a short stack"));
                        }
                        stack.split_off(stack.len() - 2)
                    } else {
                        let m = marks.pop().ok_or_else(|| self.err("no MARK"))?;
                        stack.split_off(m)
                    };
                    match stack.last_mut() {
                        Some(Value::Dict(d)) => d.extend(items.chunks(2).map(|p| (p[0].clone(), p[1].clone()))),
                        // An object built by REDUCE (e.g. OrderedDict()) receiving items.
                        Some(v @ Value::Opaque) => {
                            *v = Value::Dict(items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
                        }
                        _ => return Err(self.err("SETITEM(S) on a non-dict")),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    memo.insert(i, stack.last().cloned().ok_or_else(|| self.err("BINPUT on an empty stack"))?);
                }
                b'r' => {
                    let i = self.u32()?;
                    memo.insert(i, stack.last().cloned().ok_or_else(|| self.err("LONG_BINPUT on an empty stack"))?);
                }
                b'h' | b'j' => {
                    let i = if op == b'h' { self.u8()? as u32 } else { self.u32()? };
                    stack.push(memo.get(&i).cloned().ok_or_else(|| self.err(format!("memo {i} not set")))?)
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    stack.push(Value::Global(module, name))
                }
                b'Q' => {
                    let pid = stack.pop().ok_or_else(|| self.err("BINPERSID on an empty stack"))?;
                    stack.push(Value::PersId(Box::new(pid)))
                }
                b'R' | 0x81 => {
                    let args = stack.pop().ok_or_else(|| self.err("REDUCE on an empty stack"))?;
                    let func = stack.pop().ok_or_else(|| self.err("REDUCE on a short stack"))?;
                    stack.push(self.reduce(func, args)?)
                }
                b'b' => {
                    // BUILD: set state on an object; state dicts' OrderedDict only gets metadata.
                    stack.pop().ok_or_else(|| self.err("BUILD on an empty stack"))?;
                }
                other => return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }

    fn reduce(&self, func: Value, args: Value) -> Result<Value, ImportError> {
        let Value::Global(module, name) = &func else { return Ok(Value::Opaque) };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Ok(Value::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let Value::Tuple(a) = args else { return Err(self.err("_rebuild_tensor without a tuple")) };
                let (
                    Some(Value::PersId(pid)),
                    Some(Value::Int(offset)),
                    Some(Value::Tuple(size)),
                    Some(Value::Tuple(stride)),
                ) = (a.first(), a.get(1), a.get(2), a.get(3))
                else {
                    return Err(self.err("_rebuild_tensor arguments are not (storage, offset, size, stride)"));
                };
                let Value::Tuple(p) = pid.as_ref() else { return Err(self.err("storage id is not a tuple")) };
                let (Some(Value::Global(_, dtype)), Some(Value::Str(key))) = (p.get(1), p.get(2)) else {
                    return Err(self.err("storage id is not ('storage', type, key, …)"));
                };
                let ints = |t: &Vec<Value>| -> Result<Vec<usize>, ImportError> {
                    t.iter()
                        .map(|v| match v {
                            Value::Int(i) if *i >= 0 => Ok(*i as usize),
                            _ => Err(self.err("tensor size/stride is not a non-negative int")),
                        })
                        .collect()
                };
                Ok(Value::Tensor {
                    key: key.clone(),
                    offset: *offset as usize,
                    size: ints(size)?,
                    stride: ints(stride)?,
                    dtype: dtype.clone(),
                })
            }
            _ => Ok(Value::Opaque),
        }
    }
}

/// Reads every float tensor of a legacy-format state dict, by name. Integer entries
/// (`num_batches_tracked`) are skipped.
pub fn read_state_dict(path: &Path) -> Result<HashMap<String, StateTensor>, ImportError> {
    let buf = std::fs::read(path).map_err(|e| ImportError::Io { path: path.into(), error: e })?;
    if buf.starts_with(b"PK\x03\x04") {
        return Err(ImportError::format(
            path,
            "a zip-format torch.save file; load it with tch (Tensor::loadz_multi), not the legacy reader",
        ));
    }
    let mut r = Reader { buf: &buf, at: 0, path };
    if r.pickle()? != Value::Int(MAGIC) {
        return Err(ImportError::format(path, "not a PyTorch legacy save (magic number missing)"));
    }
    let _protocol = r.pickle()?;
    let _sys_info = r.pickle()?;
    let object = r.pickle()?;
    let Value::List(keys) = r.pickle()? else { return Err(r.err("the storage key list is not a list")) };
    // Storages follow in key order: 8-byte element count, then the elements.
    let mut storages: HashMap<String, (usize, &[u8])> = HashMap::new();
    let mut tensors_by_key: HashMap<String, String> = HashMap::new();
    let Value::Dict(entries) = &object else { return Err(r.err("the saved object is not a dict (state dict)")) };
    for (_, v) in entries {
        if let Value::Tensor { key, dtype, .. } = v {
            tensors_by_key.insert(key.clone(), dtype.clone());
        }
    }
    for k in keys {
        let Value::Str(key) = k else { return Err(r.err("a storage key is not a string")) };
        let b = r.take(8)?;
        let numel = u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize;
        let width = match tensors_by_key.get(&key).map(String::as_str) {
            Some("FloatStorage") => 4,
            Some("LongStorage") | Some("DoubleStorage") => 8,
            Some("IntStorage") => 4,
            Some("HalfStorage") | Some("BFloat16Storage") | Some("ShortStorage") => 2,
            Some("ByteStorage") | Some("CharStorage") | Some("BoolStorage") => 1,
            other => return Err(r.err(format!("storage {key}: unsupported type {other:?}"))),
        };
        let data = r.take(numel * width)?;
        storages.insert(key, (numel, data));
    }
    let mut out = HashMap::new();
    for (name, v) in entries {
        let (Value::Str(name), Value::Tensor { key, offset, size, stride, dtype }) = (name, v) else { continue };
        if dtype != "FloatStorage" {
            continue;
        }
        let (numel, data) = storages.get(key).ok_or_else(|| r.err(format!("{name}: storage {key} missing")))?;
        // Any strides (some checkpoints hold channels-last views): gather in row-major order.
        let n: usize = size.iter().product();
        let last = offset + size.iter().zip(stride).map(|(d, s)| d.saturating_sub(1) * s).sum::<usize>();
        if n > 0 && last >= *numel {
            return Err(r.err(format!("{name}: view {size:?}/{stride:?} at {offset} exceeds its storage of {numel}")));
        }
        let read = |i: usize| f32::from_le_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]);
        let mut values = Vec::with_capacity(n);
        let mut idx = vec![0usize; size.len()];
        for _ in 0..n {
            values.push(read(offset + idx.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>()));
            for d in (0..size.len()).rev() {
                idx[d] += 1;
                if idx[d] < size[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out.insert(name.clone(), StateTensor { shape: size.iter().map(|d| *d as i64).collect(), data: values });
    }
    Ok(out)
}
