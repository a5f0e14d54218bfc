//! Quantized matrix products for the inference path on x86-64 CPUs (AVX512-VNNI kernels, and
//! AVX2 ones for CPUs without VNNI).
//!
//! Generation spends its time in the projections: a decoded token is ~120 matrix-vector
//! products, and n samples decoding together multiply each weight by n activation rows. candle
//! 0.11's `QMatMul` runs a Q8_0 product as one 32-wide AVX2 dot product per (input row, output
//! column), reading the weights again for every input row, and a Q4_1 product as a scalar loop;
//! its repacked VNNI tiles need the input width to be a multiple of 256 (SmolLM2's is 576) and
//! quantize activations per 256 values, which doubled the logit error. This module keeps Q8_0's
//! per-32 activation precision and the checkpoint's own weight values.
//!
//! The layout: a matrix is cut into tiles of 16 output rows. For each block of 32 inputs a tile
//! holds eight groups of 64 bytes, group `c` holding inputs `4c..4c + 4` of each of the 16 rows,
//! so one `vpdpbusd` of a group against those 4 activation bytes, broadcast, advances all 16 dot
//! products with no horizontal sum (AVX2 does the same in two halves of 8 rows). `vpdpbusd` multiplies unsigned by signed bytes, so weights
//! are stored as unsigned codes `u` with `w = d * u + m` per row and block: Q4_1's 4-bit codes
//! and minimum as they are (two codes per byte, group `c` in the low nibble and group `c + 4` in
//! the high one, so a 4-bit matrix streams half the bytes), Q8_0's signed values offset by 128
//! (`m = -128 d`). Activations are quantized per block of 32 to i8 with an f32 scale `dx`, so for
//! each row and block `sum(w * x) = d * dx * dot(u, xq) + m * (dx * sum(xq))`. The only
//! approximation is that activation rounding, the same as llama.cpp's and candle's Q8 paths (here
//! without rounding `dx` to f16).
#![allow(unsafe_code)] // SIMD intrinsics and disjoint writes from the thread pool; see SAFETY notes.

use candle_core::quantized::{GgmlDType, QTensor};

use crate::error::Result;

/// Inputs per quantization block.
const BLOCK: usize = 32;
/// Output rows per tile (lanes of one 512-bit vector of f32 / i32).
const TILE: usize = 16;

/// One 64-byte group of a tile, aligned so that no load straddles two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// How the codes of a matrix are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codes {
    /// One byte per weight (Q8_0 offset by 128); `m = -128 d` is not stored.
    U8,
    /// Half a byte per weight (Q4_1), with its per-block minimum.
    U4,
}

impl Codes {
    fn lines_per_block(self) -> usize {
        match self {
            Codes::U8 => 8,
            Codes::U4 => 4,
        }
    }
}

/// A `[n, k]` weight matrix in the tile layout of the module docs.
pub(crate) struct PackedMatrix {
    n: usize,
    k: usize,
    codes: Codes,
    level: Level,
    lines: Vec<Line>,
    /// f16 bits of `d`, `[tiles, blocks, 16]`.
    d: Vec<u16>,
    /// f16 bits of `m`, same shape (U4 only).
    m: Vec<u16>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedMatrix")
            .field("n", &self.n)
            .field("k", &self.k)
            .field("codes", &self.codes)
            .finish_non_exhaustive()
    }
}

/// The instruction set a kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// `vpdpbusd` on 512-bit vectors: one instruction per group and row.
    Avx512Vnni,
    /// `vpmaddubsw` + `vpmaddwd` on 256-bit vectors (x86-64-v3 CPUs without VNNI: AMD Zen 2/3,
    /// Intel before Ice Lake): four to five instructions per half group and row, Q8_0's
    /// codes turned back to signed bytes so that no 16-bit sum saturates.
    Avx2,
}

/// The best kernels this CPU runs, if any.
pub(crate) fn level() -> Option<Level> {
    #[cfg(target_arch = "x86_64")]
    {
        static LEVEL: std::sync::OnceLock<Option<Level>> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                Some(Level::Avx512Vnni)
            } else if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                Some(Level::Avx2)
            } else {
                None
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Whether this CPU runs the kernels.
pub(crate) fn available() -> bool {
    level().is_some()
}

/// Whether this CPU runs `level`'s kernels (the AVX2 ones run wherever the AVX512 ones do).
#[cfg(test)]
fn runs(level: Level) -> bool {
    matches!(
        (self::level(), level),
        (Some(Level::Avx512Vnni), _) | (Some(Level::Avx2), Level::Avx2)
    )
}

impl PackedMatrix {
    /// Packs a `[n, k]` Q8_0 or Q4_1 matrix; `None` for other block types, for `k` not a
    /// multiple of 32, or when the CPU lacks the kernels' instructions.
    pub(crate) fn pack(q: &QTensor) -> Result<Option<PackedMatrix>> {
        match level() {
            Some(level) => Self::pack_for(q, level),
            None => Ok(None),
        }
    }

    /// [`PackedMatrix::pack`] for the kernels of `level`, which this CPU must run.
    fn pack_for(q: &QTensor, level: Level) -> Result<Option<PackedMatrix>> {
        let (codes, block_bytes) = match q.dtype() {
            GgmlDType::Q8_0 => (Codes::U8, 34),
            GgmlDType::Q4_1 => (Codes::U4, 20),
            _ => return Ok(None),
        };
        let dims = q.shape().dims();
        if dims.len() != 2 || !dims[1].is_multiple_of(BLOCK) {
            return Ok(None);
        }
        let (n, k) = (dims[0], dims[1]);
        let data = q.data()?;
        let nb = k / BLOCK;
        let tiles = n.div_ceil(TILE);
        let lpb = codes.lines_per_block();
        let mut lines = vec![Line([0; 64]); tiles * nb * lpb];
        let mut d = vec![0u16; tiles * nb * TILE];
        let mut m = match codes {
            Codes::U4 => vec![0u16; tiles * nb * TILE],
            Codes::U8 => Vec::new(),
        };
        let f16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        for r in 0..n {
            let (t, row) = (r / TILE, r % TILE);
            for b in 0..nb {
                let blk = &data[(r * nb + b) * block_bytes..][..block_bytes];
                let at = (t * nb + b) * TILE + row;
                d[at] = f16_at(blk, 0);
                let base = (t * nb + b) * lpb;
                match codes {
                    Codes::U8 => {
                        for (e, &q) in blk[2..].iter().enumerate() {
                            lines[base + e / 4].0[row * 4 + e % 4] = (q as i8 as i16 + 128) as u8;
                        }
                    }
                    Codes::U4 => {
                        m[at] = f16_at(blk, 2);
                        let qs = &blk[4..];
                        let code = |e: usize| {
                            if e < 16 {
                                qs[e] & 0x0f
                            } else {
                                qs[e - 16] >> 4
                            }
                        };
                        for g in 0..4 {
                            for j in 0..4 {
                                lines[base + g].0[row * 4 + j] =
                                    code(4 * g + j) | (code(4 * (g + 4) + j) << 4);
                            }
                        }
                    }
                }
            }
        }
        Ok(Some(PackedMatrix {
            n,
            k,
            codes,
            level,
            lines,
            d,
            m,
        }))
    }

    pub(crate) fn rows(&self) -> usize {
        self.n
    }

    pub(crate) fn cols(&self) -> usize {
        self.k
    }

    /// Bytes of codes and scales held.
    pub(crate) fn bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<Line>() + 2 * (self.d.len() + self.m.len())
    }

    /// Row `r` dequantized into `out` (`k` values), with the formulas candle dequantizes with,
    /// so the values are the same bits; a tied LM head serves as the embedding table this way.
    pub(crate) fn row_into(&self, r: usize, out: &mut [f32]) {
        let nb = self.k / BLOCK;
        let lpb = self.codes.lines_per_block();
        let (t, row) = (r / TILE, r % TILE);
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate().take(nb) {
            let at = (t * nb + b) * TILE + row;
            let d = half::f16::from_bits(self.d[at]).to_f32();
            let lines = &self.lines[(t * nb + b) * lpb..][..lpb];
            let code = |g: usize, j: usize| lines[g].0[row * 4 + j];
            match self.codes {
                Codes::U8 => {
                    for (e, y) in out.iter_mut().enumerate() {
                        *y = (code(e / 4, e % 4) as i16 - 128) as f32 * d;
                    }
                }
                Codes::U4 => {
                    let m = half::f16::from_bits(self.m[at]).to_f32();
                    for g in 0..4 {
                        for j in 0..4 {
                            let c = code(g, j);
                            out[4 * g + j] = (c & 0x0f) as f32 * d + m;
                            out[4 * (g + 4) + j] = (c >> 4) as f32 * d + m;
                        }
                    }
                }
            }
        }
    }

    /// `x W^T` for `x` holding `x.len() / k` rows of `k` values; returns the rows of `n` values.
    pub(crate) fn matmul(&self, x: &[f32]) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        debug_assert!(x.len().is_multiple_of(k));
        let rows = x.len() / k;
        let xq = QuantizedRows::new(x, k);
        let mut out = vec![0f32; rows * n];
        let out_addr = out.as_mut_ptr() as usize;
        let tiles = n.div_ceil(TILE);
        candle_core::utils::barrier_pool().execute_chunked(tiles, |range| {
            let mut tmp = [0f32; 4 * TILE];
            for t in range {
                let cols = TILE.min(n - t * TILE);
                let mut r = 0;
                while r < rows {
                    // AVX2 has 16 vector registers: two rows' accumulators fit, four do not.
                    let group = match (rows - r, self.level) {
                        (1, _) => 1,
                        (2 | 3, _) | (_, Level::Avx2) => 2,
                        _ => 4,
                    };
                    self.tile(t, &xq, r, group, &mut tmp);
                    for i in 0..group {
                        // SAFETY: `out` outlives the pool call, and each (row, tile) is written by
                        // exactly one work item, so no two threads write the same element.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                (out_addr as *mut f32).add((r + i) * n + t * TILE),
                                cols,
                            )
                        };
                        dst.copy_from_slice(&tmp[i * TILE..i * TILE + cols]);
                    }
                    r += group;
                }
            }
        });
        out
    }

    /// Rows `r0..r0 + group` (1, 2 or 4) of the activations against tile `t`, into
    /// `out[i * 16..]`.
    fn tile(&self, t: usize, x: &QuantizedRows, r0: usize, group: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            let nb = self.k / BLOCK;
            let lpb = self.codes.lines_per_block();
            let lines = &self.lines[t * nb * lpb..(t + 1) * nb * lpb];
            let d = &self.d[t * nb * TILE..(t + 1) * nb * TILE];
            let xs = x.rows(r0, group);
            let m = match self.codes {
                Codes::U4 => &self.m[t * nb * TILE..(t + 1) * nb * TILE],
                Codes::U8 => &[],
            };
            // SAFETY: matrices are packed only for a level this CPU runs (`pack`, and the
            // tests' `runs`), so it has the kernel's target features; the slices have the
            // lengths the kernel reads.
            unsafe {
                match (self.level, self.codes, group) {
                    (Level::Avx512Vnni, Codes::U8, 1) => x86::tile_u8::<1>(lines, d, xs, out),
                    (Level::Avx512Vnni, Codes::U8, 2) => x86::tile_u8::<2>(lines, d, xs, out),
                    (Level::Avx512Vnni, Codes::U8, _) => x86::tile_u8::<4>(lines, d, xs, out),
                    (Level::Avx512Vnni, Codes::U4, 1) => x86::tile_u4::<1>(lines, d, m, xs, out),
                    (Level::Avx512Vnni, Codes::U4, 2) => x86::tile_u4::<2>(lines, d, m, xs, out),
                    (Level::Avx512Vnni, Codes::U4, _) => x86::tile_u4::<4>(lines, d, m, xs, out),
                    (Level::Avx2, Codes::U8, 1) => x86::tile_u8_avx2::<1>(lines, d, xs, out),
                    (Level::Avx2, Codes::U8, _) => x86::tile_u8_avx2::<2>(lines, d, xs, out),
                    (Level::Avx2, Codes::U4, 1) => x86::tile_u4_avx2::<1>(lines, d, m, xs, out),
                    (Level::Avx2, Codes::U4, _) => x86::tile_u4_avx2::<2>(lines, d, m, xs, out),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (t, x, r0, group, out);
            unreachable!("packed matrices exist only on x86_64");
        }
    }
}

/// Activation rows quantized per block of 32: `x ~ dx * xq`, and `sx = dx * sum(xq)`.
struct QuantizedRows {
    k: usize,
    xq: Vec<i8>,
    dx: Vec<f32>,
    sx: Vec<f32>,
}

/// A window of `QuantizedRows` handed to a kernel.
#[derive(Clone, Copy)]
struct RowsView<'a> {
    k: usize,
    xq: &'a [i8],
    dx: &'a [f32],
    sx: &'a [f32],
}

impl QuantizedRows {
    fn new(x: &[f32], k: usize) -> QuantizedRows {
        let blocks = x.len() / BLOCK;
        let mut xq = vec![0i8; x.len()];
        let mut dx = vec![0f32; blocks];
        let mut sx = vec![0f32; blocks];
        for (b, (xs, qs)) in x
            .chunks_exact(BLOCK)
            .zip(xq.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            let amax = xs.iter().fold(0f32, |a, &v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(xs) {
                // `as` saturates, and |v * id| <= 127 up to rounding.
                *q = (v * id).round_ties_even() as i8;
                sum += *q as i32;
            }
            dx[b] = d;
            sx[b] = d * sum as f32;
        }
        QuantizedRows { k, xq, dx, sx }
    }

    fn rows(&self, r0: usize, count: usize) -> RowsView<'_> {
        let nb = self.k / BLOCK;
        RowsView {
            k: self.k,
            xq: &self.xq[r0 * self.k..(r0 + count) * self.k],
            dx: &self.dx[r0 * nb..(r0 + count) * nb],
            sx: &self.sx[r0 * nb..(r0 + count) * nb],
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Line, RowsView, TILE};

    /// The 4 activation bytes `4c..4c + 4` of block `b` of row `r`, as one 32-bit lane.
    ///
    /// # Safety
    ///
    /// `r`, `b` and `c` address bytes inside `x.xq`: `r` below the view's row count, `b` below
    /// `x.k / BLOCK` and `c` below `BLOCK / 4`.
    #[inline(always)]
    unsafe fn chunk(x: &RowsView<'_>, r: usize, b: usize, c: usize) -> i32 {
        // SAFETY: in bounds for the rows, blocks and groups the kernels visit.
        unsafe {
            let p = x.xq.as_ptr().add(r * x.k + b * BLOCK + 4 * c) as *const i32;
            p.read_unaligned()
        }
    }

    /// [`chunk`] in every lane of a 512-bit vector.
    ///
    /// # Safety
    ///
    /// As for [`chunk`], and the CPU supports AVX-512F.
    #[inline(always)]
    unsafe fn bcast(x: &RowsView<'_>, r: usize, b: usize, c: usize) -> __m512i {
        // SAFETY: as in `chunk`.
        unsafe { _mm512_set1_epi32(chunk(x, r, b, c)) }
    }

    /// The 16 f16 scales of a tile's rows for block `b`, as f32.
    ///
    /// # Safety
    ///
    /// `h` holds the 16 f16 scales of block `b` (`(b + 1) * TILE <= h.len()`), and the CPU
    /// supports AVX-512F.
    #[inline(always)]
    unsafe fn scales(h: &[u16], b: usize) -> __m512 {
        // SAFETY: `h` holds 16 f16 values per block.
        unsafe {
            _mm512_cvtph_ps(_mm256_loadu_si256(
                h.as_ptr().add(b * TILE) as *const __m256i
            ))
        }
    }

    /// Q8_0 codes (one byte, offset 128) of one tile against `R` activation rows.
    ///
    /// # Safety
    ///
    /// The CPU supports AVX-512F, AVX-512BW and AVX-512VNNI; `lines` holds the tile's 8 lines
    /// per block (64-byte aligned) and `d` its 16 scales per block, for `x.k / BLOCK` blocks; `x` has
    /// at least `R` rows and `out` room for `R * TILE` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile_u8<const R: usize>(
        lines: &[Line],
        d: &[u16],
        x: RowsView<'_>,
        out: &mut [f32],
    ) {
        let nb = x.k / BLOCK;
        let mut acc = [_mm512_setzero_ps(); R];
        let mut off = [_mm512_setzero_ps(); R];
        for b in 0..nb {
            let mut even = [_mm512_setzero_si512(); R];
            let mut odd = [_mm512_setzero_si512(); R];
            for c in (0..8).step_by(2) {
                // SAFETY: 8 lines per block.
                let (w0, w1) = unsafe {
                    (
                        _mm512_load_si512(lines.as_ptr().add(b * 8 + c) as *const __m512i),
                        _mm512_load_si512(lines.as_ptr().add(b * 8 + c + 1) as *const __m512i),
                    )
                };
                for r in 0..R {
                    // SAFETY: as in `bcast`.
                    unsafe {
                        even[r] = _mm512_dpbusd_epi32(even[r], w0, bcast(&x, r, b, c));
                        odd[r] = _mm512_dpbusd_epi32(odd[r], w1, bcast(&x, r, b, c + 1));
                    }
                }
            }
            // SAFETY: as in `scales`.
            let dv = unsafe { scales(d, b) };
            for r in 0..R {
                let dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even[r], odd[r]));
                let dx = _mm512_set1_ps(x.dx[r * nb + b]);
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dot, dv), dx, acc[r]);
                off[r] = _mm512_fmadd_ps(dv, _mm512_set1_ps(x.sx[r * nb + b]), off[r]);
            }
        }
        for r in 0..R {
            // The codes are `q + 128`: subtract `128 * d * dx * sum(xq)` per block.
            let y = _mm512_fmadd_ps(off[r], _mm512_set1_ps(-128.0), acc[r]);
            // SAFETY: `out` holds 16 values per row.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(r * TILE), y) };
        }
    }

    /// Q4_1 codes (two per byte) of one tile against `R` activation rows.
    ///
    /// # Safety
    ///
    /// As for [`tile_u8`], with the tile's 4 lines per block and `m` holding its 16 minimums
    /// per block.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile_u4<const R: usize>(
        lines: &[Line],
        d: &[u16],
        m: &[u16],
        x: RowsView<'_>,
        out: &mut [f32],
    ) {
        let nb = x.k / BLOCK;
        let low = _mm512_set1_epi8(0x0f);
        let mut acc = [_mm512_setzero_ps(); R];
        let mut off = [_mm512_setzero_ps(); R];
        for b in 0..nb {
            let mut even = [_mm512_setzero_si512(); R];
            let mut odd = [_mm512_setzero_si512(); R];
            for g in 0..4 {
                // SAFETY: 4 lines per block.
                let v =
                    unsafe { _mm512_load_si512(lines.as_ptr().add(b * 4 + g) as *const __m512i) };
                let lo = _mm512_and_si512(v, low);
                let hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                for r in 0..R {
                    // SAFETY: as in `bcast`.
                    unsafe {
                        even[r] = _mm512_dpbusd_epi32(even[r], lo, bcast(&x, r, b, g));
                        odd[r] = _mm512_dpbusd_epi32(odd[r], hi, bcast(&x, r, b, g + 4));
                    }
                }
            }
            // SAFETY: as in `scales`.
            let (dv, mv) = unsafe { (scales(d, b), scales(m, b)) };
            for r in 0..R {
                let dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even[r], odd[r]));
                let dx = _mm512_set1_ps(x.dx[r * nb + b]);
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dot, dv), dx, acc[r]);
                off[r] = _mm512_fmadd_ps(mv, _mm512_set1_ps(x.sx[r * nb + b]), off[r]);
            }
        }
        for r in 0..R {
            let y = _mm512_add_ps(acc[r], off[r]);
            // SAFETY: `out` holds 16 values per row.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(r * TILE), y) };
        }
    }
    /// [`chunk`] in every lane of a 256-bit vector.
    ///
    /// # Safety
    ///
    /// As for [`chunk`], and the CPU supports AVX2.
    #[inline(always)]
    unsafe fn bcast256(x: &RowsView<'_>, r: usize, b: usize, c: usize) -> __m256i {
        // SAFETY: as in `chunk`.
        unsafe { _mm256_set1_epi32(chunk(x, r, b, c)) }
    }

    /// The 8 f16 scales of half `h` of a tile's rows for block `b`.
    ///
    /// # Safety
    ///
    /// `s` holds the 16 f16 scales of block `b` (`(b + 1) * TILE <= s.len()`), `h` is 0 or 1,
    /// and the CPU supports AVX2 and F16C.
    #[inline(always)]
    unsafe fn scales256(s: &[u16], b: usize, h: usize) -> __m256 {
        // SAFETY: `s` holds 16 f16 values per block.
        unsafe {
            _mm256_cvtph_ps(_mm_loadu_si128(
                s.as_ptr().add(b * TILE + 8 * h) as *const __m128i
            ))
        }
    }

    /// The 32 bytes of half `h` (rows `8h..8h + 8`) of line `i`.
    ///
    /// # Safety
    ///
    /// `i < lines.len()`, `h` is 0 or 1, and the CPU supports AVX2.
    #[inline(always)]
    unsafe fn half_line(lines: &[Line], i: usize, h: usize) -> __m256i {
        // SAFETY: `i` is in bounds; lines are 64-byte aligned, so each half is 32-byte aligned.
        unsafe { _mm256_load_si256((lines.as_ptr().add(i) as *const __m256i).add(h)) }
    }

    /// [`tile_u8`] without VNNI: the codes `q + 128` become `q` again, and
    /// `maddubs(|q|, sign(x, q))` sums pairs of products of at most 127 * 127 in 16 bits.
    ///
    /// # Safety
    ///
    /// The CPU supports AVX2, FMA and F16C; the slices as for [`tile_u8`].
    // The row and half indices also address activation rows and memory, not just `dots`.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile_u8_avx2<const R: usize>(
        lines: &[Line],
        d: &[u16],
        x: RowsView<'_>,
        out: &mut [f32],
    ) {
        let nb = x.k / BLOCK;
        let ones = _mm256_set1_epi16(1);
        let flip = _mm256_set1_epi8(-128);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for b in 0..nb {
            let mut dots = [[_mm256_setzero_si256(); 2]; R];
            for c in 0..8 {
                for h in 0..2 {
                    // SAFETY: 8 lines per block.
                    let q = _mm256_xor_si256(unsafe { half_line(lines, b * 8 + c, h) }, flip);
                    let abs_q = _mm256_sign_epi8(q, q);
                    for r in 0..R {
                        // SAFETY: as in `bcast256`.
                        let xs = _mm256_sign_epi8(unsafe { bcast256(&x, r, b, c) }, q);
                        let pairs = _mm256_maddubs_epi16(abs_q, xs);
                        dots[r][h] = _mm256_add_epi32(dots[r][h], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for h in 0..2 {
                // SAFETY: as in `scales256`.
                let dv = unsafe { scales256(d, b, h) };
                for r in 0..R {
                    let dot = _mm256_mul_ps(_mm256_cvtepi32_ps(dots[r][h]), dv);
                    let dx = _mm256_set1_ps(x.dx[r * nb + b]);
                    acc[r][h] = _mm256_fmadd_ps(dot, dx, acc[r][h]);
                }
            }
        }
        for r in 0..R {
            for h in 0..2 {
                // SAFETY: `out` holds 16 values per row.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(r * TILE + 8 * h), acc[r][h]) };
            }
        }
    }

    /// [`tile_u4`] without VNNI: 4-bit codes times bytes of at most 127 sum to at most 7,620
    /// over the two `maddubs` of a group, well inside 16 bits.
    ///
    /// # Safety
    ///
    /// The CPU supports AVX2, FMA and F16C; the slices as for [`tile_u4`].
    // The row and half indices also address activation rows and memory, not just `dots`.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile_u4_avx2<const R: usize>(
        lines: &[Line],
        d: &[u16],
        m: &[u16],
        x: RowsView<'_>,
        out: &mut [f32],
    ) {
        let nb = x.k / BLOCK;
        let ones = _mm256_set1_epi16(1);
        let low = _mm256_set1_epi8(0x0f);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let mut off = [[_mm256_setzero_ps(); 2]; R];
        for b in 0..nb {
            let mut dots = [[_mm256_setzero_si256(); 2]; R];
            for g in 0..4 {
                for h in 0..2 {
                    // SAFETY: 4 lines per block.
                    let v = unsafe { half_line(lines, b * 4 + g, h) };
                    let lo = _mm256_and_si256(v, low);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                    for r in 0..R {
                        // SAFETY: as in `bcast256`.
                        let (xlo, xhi) =
                            unsafe { (bcast256(&x, r, b, g), bcast256(&x, r, b, g + 4)) };
                        let pairs = _mm256_add_epi16(
                            _mm256_maddubs_epi16(lo, xlo),
                            _mm256_maddubs_epi16(hi, xhi),
                        );
                        dots[r][h] = _mm256_add_epi32(dots[r][h], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for h in 0..2 {
                // SAFETY: as in `scales256`.
                let (dv, mv) = unsafe { (scales256(d, b, h), scales256(m, b, h)) };
                for r in 0..R {
                    let dot = _mm256_mul_ps(_mm256_cvtepi32_ps(dots[r][h]), dv);
                    let dx = _mm256_set1_ps(x.dx[r * nb + b]);
                    acc[r][h] = _mm256_fmadd_ps(dot, dx, acc[r][h]);
                    off[r][h] = _mm256_fmadd_ps(mv, _mm256_set1_ps(x.sx[r * nb + b]), off[r][h]);
                }
            }
        }
        for r in 0..R {
            for h in 0..2 {
                let y = _mm256_add_ps(acc[r][h], off[r][h]);
                // SAFETY: `out` holds 16 values per row.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(r * TILE + 8 * h), y) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The kernel levels this CPU runs; a test over none of them says so.
    fn levels() -> impl Iterator<Item = Level> {
        let ls: Vec<Level> = [Level::Avx512Vnni, Level::Avx2]
            .into_iter()
            .filter(|&l| runs(l))
            .collect();
        if ls.is_empty() {
            eprintln!("skipped: this CPU runs none of the packed kernels");
        }
        ls.into_iter()
    }

    /// `xd W^T` in f64, with `W` dequantized by candle (not by this module) and `xd` the
    /// dequantized activations, so only summation order separates it from the kernels.
    fn reference(q: &QTensor, x: &[f32], k: usize) -> Vec<f64> {
        let w = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let n = w.len() / k;
        let xq = QuantizedRows::new(x, k);
        let rows = x.len() / k;
        let mut y = vec![0f64; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut s = 0f64;
                for e in 0..k {
                    let xd = xq.dx[(r * k + e) / BLOCK] as f64 * xq.xq[r * k + e] as f64;
                    s += xd * w[c * k + e] as f64;
                }
                y[r * n + c] = s;
            }
        }
        y
    }

    #[test]
    fn kernels_equal_dequantized_products() {
        let dev = Device::Cpu;
        let mut checked = 0;
        for (level, dtype) in levels().flat_map(|l| [(l, GgmlDType::Q8_0), (l, GgmlDType::Q4_1)]) {
            // n not a multiple of the tile; every row-group size (4, 2, 1) and mixes of them.
            for (n, k) in [(37, 96), (48, 576)] {
                let w = Tensor::randn(0f32, 0.5, (n, k), &dev).unwrap();
                // Q8_0 codes at both ends of their range, where 16-bit sums could saturate.
                let w = if n == 37 {
                    (w * 40.0).unwrap().clamp(-1f32, 1f32).unwrap()
                } else {
                    w
                };
                let q = QTensor::quantize(&w, dtype).unwrap();
                let p = PackedMatrix::pack_for(&q, level)
                    .unwrap()
                    .expect("packable");
                assert_eq!(p.rows(), n);
                for rows in [1, 2, 3, 4, 5, 7, 9] {
                    let x = Tensor::randn(0f32, 2.0, (rows, k), &dev)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                    let got = p.matmul(&x);
                    let want = reference(&q, &x, k);
                    assert_eq!(got.len(), want.len());
                    for (i, (&g, &r)) in got.iter().zip(&want).enumerate() {
                        let tol = 1e-4 * (1.0 + r.abs());
                        assert!(
                            (g as f64 - r).abs() <= tol,
                            "{level:?} {dtype:?} n={n} k={k} rows={rows} at {i}: kernel {g} vs reference {r}"
                        );
                    }
                    checked += got.len();
                }
            }
        }
        eprintln!("checked {checked} outputs against the dequantized reference");
    }

    /// Each activation row is quantized and accumulated on its own, in the same order whatever
    /// rows share its call, so batching, padding and KV-cache decoding do not change a row's
    /// numbers.
    #[test]
    fn a_row_gives_the_same_bits_in_any_batch() {
        let dev = Device::Cpu;
        for (level, dtype) in levels().flat_map(|l| [(l, GgmlDType::Q8_0), (l, GgmlDType::Q4_1)]) {
            let (n, k) = (40, 160);
            let w = Tensor::randn(0f32, 0.5, (n, k), &dev).unwrap();
            let p = PackedMatrix::pack_for(&QTensor::quantize(&w, dtype).unwrap(), level)
                .unwrap()
                .unwrap();
            let x = Tensor::randn(0f32, 1.0, (7, k), &dev)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let all = p.matmul(&x);
            for r in 0..7 {
                let alone = p.matmul(&x[r * k..(r + 1) * k]);
                assert_eq!(
                    alone,
                    all[r * n..(r + 1) * n],
                    "{level:?} {dtype:?} row {r}"
                );
            }
        }
    }

    #[test]
    fn activation_rounding_stays_within_half_a_step() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.173)
            .collect();
        let q = QuantizedRows::new(&x, 96);
        for (e, &v) in x.iter().enumerate() {
            let d = q.dx[e / BLOCK];
            let back = d * q.xq[e] as f32;
            assert!((back - v).abs() <= d * 0.5 + 1e-6, "{e}: {v} -> {back}");
        }
        let sums: Vec<f32> =
            q.xq.chunks(BLOCK)
                .zip(&q.dx)
                .map(|(c, &d)| d * c.iter().map(|&v| v as i32).sum::<i32>() as f32)
                .collect();
        assert_eq!(sums, q.sx);
    }

    #[test]
    fn rows_dequantize_to_candles_values() {
        let Some(level) = level() else {
            eprintln!("skipped: this CPU runs none of the packed kernels");
            return;
        };
        let (n, k) = (37, 96);
        let w = Tensor::randn(0f32, 0.5, (n, k), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_1] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let p = PackedMatrix::pack_for(&q, level).unwrap().unwrap();
            let want = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let mut got = vec![0f32; k];
            for (r, want) in want.iter().enumerate() {
                p.row_into(r, &mut got);
                assert_eq!(&got, want, "{dtype:?} row {r}");
            }
        }
    }

    #[test]
    fn other_block_types_are_not_packed() {
        let w = Tensor::randn(0f32, 1.0, (16, 256), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        assert!(PackedMatrix::pack(&q).unwrap().is_none());
    }
}
