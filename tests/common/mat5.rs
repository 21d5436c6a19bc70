//! A minimal MATLAB v5 .mat reader for the reference outputs of the official readers:
//! numeric (real or complex), char, cell and struct arrays, compressed or not.

use std::collections::BTreeMap;
use std::io::Read;

#[derive(Debug, Clone)]
#[allow(dead_code)] // Char is decoded for completeness; the tests read numbers only.
pub enum Mat {
    Numeric {
        dims: Vec<usize>,
        re: Vec<f64>,
        im: Option<Vec<f64>>,
    },
    Char(String),
    Cell {
        dims: Vec<usize>,
        items: Vec<Mat>,
    },
    /// `values[element][field]`, elements in column-major order.
    Struct {
        dims: Vec<usize>,
        fields: Vec<String>,
        values: Vec<Vec<Mat>>,
    },
    Empty,
}

impl Mat {
    pub fn dims(&self) -> &[usize] {
        match self {
            Mat::Numeric { dims, .. } | Mat::Cell { dims, .. } | Mat::Struct { dims, .. } => dims,
            _ => &[],
        }
    }

    pub fn cell(&self, i: usize) -> &Mat {
        match self {
            Mat::Cell { items, .. } => &items[i],
            other => panic!("not a cell array: {other:?}"),
        }
    }

    pub fn field(&self, name: &str) -> &Mat {
        match self {
            Mat::Struct { fields, values, .. } => {
                let k = fields
                    .iter()
                    .position(|f| f == name)
                    .unwrap_or_else(|| panic!("no field {name}"));
                &values[0][k]
            }
            other => panic!("not a struct: {other:?}"),
        }
    }

    /// Column-major values as (re, im).
    pub fn complex(&self) -> Vec<(f64, f64)> {
        match self {
            Mat::Numeric { re, im, .. } => re
                .iter()
                .enumerate()
                .map(|(i, &r)| (r, im.as_ref().map_or(0.0, |im| im[i])))
                .collect(),
            other => panic!("not numeric: {other:?}"),
        }
    }

    pub fn scalar(&self) -> f64 {
        match self {
            Mat::Numeric { re, .. } if re.len() == 1 => re[0],
            other => panic!("not a scalar: {other:?}"),
        }
    }

    pub fn reals(&self) -> Vec<f64> {
        self.complex().into_iter().map(|c| c.0).collect()
    }
}

struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.b[self.pos..self.pos + 4].try_into().unwrap());
        self.pos += 4;
        v
    }
    fn done(&self) -> bool {
        self.pos + 8 > self.b.len()
    }
    /// One data element: (type, data bytes). Handles the small-element form and padding.
    fn element(&mut self) -> (u32, &'a [u8]) {
        let first = self.u32();
        if first >> 16 != 0 {
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            let data = &self.b[self.pos..self.pos + n];
            self.pos += 4;
            return (ty, data);
        }
        let n = self.u32() as usize;
        let data = &self.b[self.pos..self.pos + n];
        self.pos += n;
        if first != 15 {
            self.pos = (self.pos + 7) & !7;
        }
        (first, data)
    }
}

fn numbers(ty: u32, d: &[u8]) -> Vec<f64> {
    match ty {
        1 => d.iter().map(|&b| b as i8 as f64).collect(),
        2 => d.iter().map(|&b| b as f64).collect(),
        3 => d
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        4 => d
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        5 => d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        6 => d
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        7 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        9 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        12 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        13 => d
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("unsupported numeric element type {other}"),
    }
}

/// Parses the content of a miMATRIX element; returns (name, value).
fn matrix(d: &[u8]) -> (String, Mat) {
    if d.is_empty() {
        return (String::new(), Mat::Empty);
    }
    let mut r = Rd { b: d, pos: 0 };
    let (_, flags) = r.element();
    let flags = u32::from_le_bytes(flags[0..4].try_into().unwrap());
    let class = flags & 0xff;
    let complex = flags & 0x800 != 0;
    let (_, dims) = r.element();
    let dims: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    let (_, name) = r.element();
    let name = String::from_utf8_lossy(name).into_owned();
    let count: usize = dims.iter().product();
    let value = match class {
        1 => {
            let items = (0..count)
                .map(|_| {
                    let (_, e) = r.element();
                    matrix(e).1
                })
                .collect();
            Mat::Cell { dims, items }
        }
        2 => {
            let (_, fl) = r.element();
            let flen = i32::from_le_bytes(fl[0..4].try_into().unwrap()) as usize;
            let (_, names) = r.element();
            let fields: Vec<String> = names
                .chunks(flen)
                .map(|c| {
                    String::from_utf8_lossy(c)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .collect();
            let values = (0..count)
                .map(|_| {
                    fields
                        .iter()
                        .map(|_| {
                            let (_, e) = r.element();
                            matrix(e).1
                        })
                        .collect()
                })
                .collect();
            Mat::Struct {
                dims,
                fields,
                values,
            }
        }
        4 => {
            let (ty, d) = r.element();
            Mat::Char(
                numbers(ty, d)
                    .into_iter()
                    .map(|c| char::from_u32(c as u32).unwrap_or('?'))
                    .collect(),
            )
        }
        6..=15 => {
            let (ty, re) = r.element();
            let re = numbers(ty, re);
            let im = complex.then(|| {
                let (ty, im) = r.element();
                numbers(ty, im)
            });
            Mat::Numeric { dims, re, im }
        }
        other => panic!("unsupported MATLAB class {other}"),
    };
    (name, value)
}

/// All top-level variables of a little-endian MATLAB v5 file.
pub fn load(bytes: &[u8]) -> BTreeMap<String, Mat> {
    assert!(
        bytes.len() >= 128 && bytes.starts_with(b"MATLAB 5.0"),
        "not a MATLAB v5 file"
    );
    assert_eq!(
        &bytes[126..128],
        b"IM",
        "only little-endian .mat files are supported"
    );
    let mut out = BTreeMap::new();
    let mut r = Rd { b: bytes, pos: 128 };
    while !r.done() {
        let (ty, d) = r.element();
        let (name, value) = match ty {
            14 => matrix(d),
            15 => {
                let mut raw = Vec::new();
                flate2::read::ZlibDecoder::new(d)
                    .read_to_end(&mut raw)
                    .expect("zlib");
                let mut inner = Rd { b: &raw, pos: 0 };
                let (ty, d) = inner.element();
                assert_eq!(ty, 14, "compressed element is not a matrix");
                matrix(d)
            }
            _ => continue,
        };
        out.insert(name, value);
    }
    out
}
