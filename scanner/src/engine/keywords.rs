//! The keyword pass: where each of a few thousand short literals occurs in a blob (ASCII
//! case-insensitive, every occurrence, overlapping ones included).
//!
//! An Aho-Corasick automaton over ~2,200 keywords has no SIMD prefilter to lean on: its DFA
//! runs at ~170 MB/s on source code (a 6 MB table that misses the cache) and takes ~30 ms to
//! build, its NFA is slower still and takes ~12 ms — a pre-commit hook's whole budget. Here
//! each keyword is represented by four-byte grams of it that are rare in source code (its
//! "anchors"), chosen so that every occurrence of the keyword has an anchor starting at an
//! even offset of the blob: two neighbouring grams for a keyword of five bytes or more, the
//! keyword and the grams of any byte before it for four bytes, and the grams of any byte
//! before or after it for three. The pass then tests only every other position's gram against
//! a Bloom filter of the anchors (two bits in one word, so one load) that stays in cache; only
//! at the few positions that pass are the anchors looked up and each keyword there compared in
//! full. Building takes about a millisecond for the 2,229 built-in keywords (most of it
//! choosing their anchors); searching costs a few instructions per two bytes whatever the
//! number of keywords.
//!
//! Keywords shorter than three bytes (rare: `q~`) are found by `memchr` on their rarer byte.

/// How rare each pair of byte classes is in source code: -log2 of the pair's frequency,
/// measured on 30 MB of open-source crates' files. Row: the first byte's class, column: the
/// second's; the classes are [`class`]'s (`a`–`z` in any case, a digit, `_`, `-`, `.`,
/// whitespace, anything else). Only the choice of anchors depends on it, never what is found.
#[rustfmt::skip]
const PAIR_RARITY: [[u8; 32]; 32] = [
    [14, 10,  9,  9, 13, 11, 10, 15,  9, 17, 12,  8,  9,  8, 18, 10, 18,  8,  8,  7, 11, 12, 11, 12, 11, 13, 11, 13, 14, 13, 10, 11], // a
    [11, 13, 12, 14, 10, 14, 19, 20, 10, 14, 16, 10, 15, 17,  9, 16, 21, 12, 12, 14,  9, 17, 18, 18, 11, 17, 11, 13, 16, 12,  8, 11], // b
    [ 9, 13, 11, 13,  9, 10, 16,  9, 11, 17,  9,  9, 13, 14,  7, 12, 14,  9, 11,  9, 11, 13, 14, 14, 13, 21, 11,  9, 13, 13, 11,  9], // c
    [11, 13, 13, 11,  7, 13, 14, 15,  9, 16, 15, 12, 13, 15,  9, 13, 18, 11, 11, 12, 11, 14, 15, 15, 12, 19, 11,  9, 13, 11,  9,  8], // d
    [ 8, 11,  9,  8, 10, 10, 11, 13, 12, 16, 13,  8, 10,  8, 12, 10, 10,  7,  8,  8, 13, 11, 11,  9, 11, 18, 11,  9, 12, 10,  7,  7], // e
    [11, 14, 13, 12, 10, 10, 11, 17,  9, 24, 19, 11, 12, 10,  9, 15, 18, 10, 12, 13, 10, 15, 15, 19, 13, 25, 11, 11, 16, 10,  9,  9], // f
    [13, 16, 14, 15,  9, 17, 14, 12, 10, 24, 16, 13, 14, 11, 12, 15, 17, 11, 12, 13, 12, 17, 16, 18, 16, 15, 14, 11, 15, 13,  9,  9], // g
    [ 9, 15, 16, 14,  8, 14, 18, 19, 10, 23, 18, 14, 12, 16, 10, 10, 22, 11, 13, 11, 11, 20, 15, 17, 13, 19, 14, 12, 16, 14, 10, 10], // h
    [11, 11,  9,  9, 10, 10, 10, 17, 16, 18, 14,  9,  9,  7,  8, 11, 17, 10,  9,  8, 17, 10, 16, 11, 19, 10, 12, 12, 15, 15, 13, 11], // i
    [14, 22, 20, 23, 13, 21, 22, 18, 16, 21, 17, 21, 20, 19, 13, 20, 21, 20, 15, 18, 15, 21, 18, 21, 21, 20, 17, 17, 22, 19, 16, 15], // j
    [12, 15, 15, 15,  9, 16, 15, 17, 11, 23, 20, 16, 17, 14, 16, 16, 17, 16, 11, 14, 16, 15, 16, 25, 18, 23, 15, 12, 16, 14, 12, 10], // k
    [10, 15, 13, 10,  8,  9, 12, 16,  9, 20, 14,  9, 15, 14,  8, 14, 20, 14, 10, 10,  9, 14, 15, 16, 11, 16, 14, 11, 14, 12, 10,  9], // l
    [ 9, 12, 14, 14,  8, 15, 16, 17, 10, 21, 16, 12, 12, 16, 10,  9, 16, 15, 11, 12,  9, 17, 17, 18, 14, 18, 15, 11, 14, 13, 11, 10], // m
    [10, 13,  9,  8,  8, 11,  8, 14, 10, 16, 12, 11, 14, 11,  9, 11, 18, 14,  8,  8, 11, 12, 12, 17, 12, 16, 14, 11, 13, 12,  8,  9], // n
    [13, 12,  9, 10, 12, 10, 11, 17, 11, 14, 10,  9,  9,  7,  9, 10, 21,  8,  9, 10,  9, 11,  9, 13, 16, 18, 13, 11, 13, 14, 10, 10], // o
    [ 9, 15, 14, 14,  9, 14, 15, 12, 11, 19, 13,  9, 16, 16, 10,  9, 17,  9, 11, 10,  8, 15, 15, 17, 12, 21, 13, 11, 15, 14, 10, 10], // p
    [18, 17, 16, 16, 18, 21, 23, 20, 15, 25, 21, 17, 20, 17, 18, 17, 19, 16, 14, 16, 11, 17, 21, 21, 23, 21, 18, 15, 19, 17, 14, 11], // q
    [ 8, 14, 10, 11,  7, 13, 11, 15,  9, 22, 12, 12, 10, 10,  8, 13, 18,  9,  9,  9, 10, 12, 13, 14, 10, 19, 13, 10, 14, 11,  9,  8], // r
    [11, 14, 11, 13,  7, 14, 13, 10,  8, 18, 12, 12, 12, 14, 10, 10, 16, 11,  9,  7, 10, 14, 14, 16, 10, 16, 13,  9, 11, 10,  8,  8], // s
    [ 8, 13, 10, 10,  7, 13, 16,  8,  8, 18, 16, 12, 12, 15,  8, 11, 18,  8, 10, 10,  9, 14, 13, 12, 10, 18, 13,  9, 11, 10,  7,  7], // t
    [12,  8, 10, 10, 10, 11, 12, 22, 10, 23, 20,  9, 10,  9, 14, 11, 21,  9,  9,  8, 18, 18, 19, 13, 19, 17, 10, 14, 16, 18, 13, 13], // u
    [10, 18, 14, 18,  9, 16, 16, 18, 11, 25, 21, 16, 15, 18, 12, 15, 18, 18, 15, 16, 20, 18, 19, 17, 21, 21, 12, 13, 16, 14, 14, 12], // v
    [10, 18, 15, 15, 11, 15, 19, 11,  9, 17, 15, 13, 16, 11, 11, 17, 22, 10,  9, 16, 19, 21, 16, 18, 19, 25, 17, 12, 16, 14, 12, 11], // w
    [12, 14, 12, 14, 12, 13, 16, 14, 13, 24, 20, 16, 15, 17, 16, 11, 19, 17, 14, 11, 16, 19, 16, 14, 17, 21,  9, 12, 14, 13, 12, 10], // x
    [15, 14, 15, 16, 13, 16, 15, 16, 13, 22, 19, 14, 13, 11, 12, 10, 22, 14, 10, 12, 17, 18, 15, 19, 17, 17, 15, 11, 14, 12,  9,  9], // y
    [14, 16, 17, 15,  9, 17, 21, 18, 15, 23, 22, 16, 18, 20, 14, 20, 24, 21, 11, 21, 19, 20, 18, 21, 16, 16, 17, 17, 19, 18, 15, 14], // z
    [11, 11, 11, 11, 11, 11, 19, 18, 16, 21, 17, 17, 17, 18, 14, 16, 21, 16, 17, 17, 14, 18, 20,  9, 21, 22,  6, 11,  9, 10, 10,  7], // digit
    [10, 11, 10, 11, 10, 10, 12, 12,  9, 15, 13, 10, 10, 11, 11, 10, 14, 10,  9,  9, 11, 11, 12, 14, 16, 15, 11, 12, 23, 18, 12, 12], // _
    [13, 12, 13, 14, 14, 14, 15, 15, 12, 19, 17, 12, 14, 15, 14, 13, 18, 13, 11, 13, 14, 14, 10, 16, 19, 16, 12, 23, 12, 21, 11, 10], // -
    [11, 13, 11, 13, 13, 12, 13, 10, 11, 14, 15, 12, 12, 13, 13, 11, 17, 12, 11, 12, 12, 14, 13, 17, 18, 17, 10, 17, 21, 12,  9, 12], // .
    [ 8,  9,  7,  9,  9,  8, 11, 10,  8, 14, 12,  9,  9,  9,  9,  8, 13,  9,  7,  7,  9, 10,  9,  9, 12, 11,  8, 10, 10, 11,  3,  5], // whitespace
    [ 9,  9,  9,  9, 10,  9, 11, 11,  9, 14, 13, 11,  9, 10, 11,  9, 13,  9,  8,  9, 10, 11, 11, 12, 14, 12,  9, 11, 13, 10,  4,  5], // other
];

/// A byte's class in [`PAIR_RARITY`].
fn class(byte: u8) -> usize {
    match byte.to_ascii_lowercase() {
        b @ b'a'..=b'z' => usize::from(b - b'a'),
        b'0'..=b'9' => 26,
        b'_' => 27,
        b'-' => 28,
        b'.' => 29,
        b' ' | b'\t' | b'\n' | b'\r' => 30,
        _ => 31,
    }
}

/// How rare `gram` is in source code: the sum of its pairs' rarities.
fn rarity(gram: &[u8]) -> u32 {
    gram.windows(2)
        .map(|p| u32::from(PAIR_RARITY[class(p[0])][class(p[1])]))
        .sum()
}

/// The 20,000 commonest four-byte grams of source code (lowercase, made of letters, digits and
/// ` _.-:/=`), each with its rank (0: commonest), in a hash table (`build.rs` makes it from
/// `engine/common-grams.txt`, which `engine/count-grams.py` counted on Python, C headers, Perl,
/// JavaScript, this project's Rust, YAML, TOML and Markdown). Only the choice of anchors
/// depends on it, never what is found.
static COMMON_GRAMS: &[(u32, u16)] = include!(concat!(env!("OUT_DIR"), "/common_grams.rs"));

/// The rank of `gram` among the common grams (0: commonest), if it is there: its first slot in
/// [`COMMON_GRAMS`] is the top bits of a multiply, then the next slots up to an empty one (0),
/// as `build.rs` filled them.
fn common_rank(gram: [u8; 4]) -> Option<usize> {
    let gram = u32::from_le_bytes(gram);
    let bits = COMMON_GRAMS.len().trailing_zeros();
    let mut slot = (gram.wrapping_mul(0x9e37_79b1) >> (32 - bits)) as usize;
    loop {
        match COMMON_GRAMS[slot] {
            (0, _) => return None,
            (g, rank) if g == gram => return Some(usize::from(rank)),
            _ => slot = (slot + 1) % COMMON_GRAMS.len(),
        }
    }
}

/// How common a four-byte gram is in source code, for comparisons only: first whether and how
/// high it ranks among the common grams, then its [`PAIR_RARITY`].
fn commonness(gram: [u8; 4]) -> (usize, u32) {
    (
        common_rank(gram).map_or(0, |rank| u16::MAX as usize - rank),
        u32::MAX - rarity(&gram),
    )
}

/// The offset `o` of `keyword`'s rarest pair of neighbouring four-byte grams (at `o` and
/// `o + 1`; one of them starts at an even offset of the blob wherever the keyword occurs): the
/// pair whose commoner gram is least common, then the first.
fn anchor_pair(keyword: &[u8]) -> usize {
    let grams: Vec<_> = keyword
        .windows(4)
        .map(|g| commonness([g[0], g[1], g[2], g[3]]))
        .collect();
    (0..grams.len() - 1)
        .min_by_key(|i| grams[*i].max(grams[i + 1]))
        .expect("a keyword of five bytes or more")
}

/// The folded values a byte next to a short keyword can take (see [`fold`]): a gram that
/// holds the keyword and that byte is an anchor for each of them.
fn any_byte() -> impl Iterator<Item = u32> {
    (0..=255u32).filter(|b| b & 0x20 != 0)
}

/// Folds a gram's letters to lowercase (and, harmlessly, some punctuation onto others: the
/// filter may pass a little more, the full comparison decides).
#[inline(always)]
fn fold(gram: u32) -> u32 {
    gram | 0x2020_2020
}

/// [`fold`] for eight bytes.
#[inline(always)]
fn fold64(bytes: u64) -> u64 {
    bytes | 0x2020_2020_2020_2020
}

/// The four bytes at `bytes[0..4]` as a gram (little-endian: a three-byte gram is the low
/// three bytes).
#[inline(always)]
fn gram(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Two bits of a word for each twelve-bit index (its low six bits and its high six name
/// them): one load instead of two shifts by variable counts, which take more than one
/// micro-op each on x86-64 without BMI2. 32 KiB, in L1.
static TWO_BITS: [u64; 4096] = {
    let mut bits = [0; 4096];
    let mut i = 0;
    while i < 4096 {
        bits[i] = 1 << (i & 63) | 1 << (i >> 6);
        i += 1;
    }
    bits
};

/// Whether `keyword` (lowercase) is in `haystack` at `start`, in any case.
#[inline(always)]
fn occurs_at(haystack: &[u8], start: usize, keyword: &[u8]) -> bool {
    haystack
        .get(start..start + keyword.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(keyword))
}

/// A keyword's anchor in a [`Table`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The bytes of the anchor that are fixed, folded (see [`fold`]): all four, or three
    /// (low bytes) when the byte before or after the keyword may be any.
    key: u32,
    /// The keyword's index.
    keyword: u32,
    /// Where the anchor starts in the keyword: -1 for a gram of the byte before it and its
    /// first three.
    offset: i32,
    /// The keyword's first eight bytes (fewer if it is shorter), folded, and which bytes
    /// those are: most candidates fail this one comparison.
    head: u64,
    head_mask: u64,
}

impl Entry {
    /// Keyword `index` (lowercase), anchored on the folded bytes `key` at `offset`.
    fn new(keyword: &[u8], index: usize, key: u32, offset: i32) -> Entry {
        let mut head = [0u8; 8];
        let n = keyword.len().min(8);
        head[..n].copy_from_slice(&keyword[..n]);
        Entry {
            key,
            keyword: index as u32,
            offset,
            head: fold64(u64::from_le_bytes(head)),
            head_mask: u64::MAX >> (8 * (8 - n)),
        }
    }
}

/// Anchors by key: bucket `b` (the top bits of a multiply of the key) holds
/// `entries[buckets[b]..buckets[b + 1]]`.
#[derive(Debug)]
struct Table {
    /// Bits of the key's hash that pick the bucket.
    bits: u32,
    buckets: Box<[u32]>,
    entries: Box<[Entry]>,
}

impl Table {
    /// `entries` in about one bucket each (a keyword's entries keep their order).
    fn new(mut entries: Vec<Entry>) -> Table {
        let bits = entries.len().next_power_of_two().trailing_zeros().max(1);
        let mut table = Table {
            bits,
            buckets: vec![0u32; (1 << bits) + 1].into_boxed_slice(),
            entries: Box::new([]),
        };
        entries.sort_by_key(|e| table.bucket(e.key)); // stable: the order within a bucket stays
        for e in &entries {
            table.buckets[table.bucket(e.key) + 1] += 1;
        }
        for b in 1..table.buckets.len() {
            table.buckets[b] += table.buckets[b - 1];
        }
        table.entries = entries.into_boxed_slice();
        table
    }

    #[inline(always)]
    fn bucket(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b1) >> (32 - self.bits)) as usize
    }

    /// The entries whose key is `key`.
    #[inline(always)]
    fn get(&self, key: u32) -> impl Iterator<Item = &Entry> {
        let b = self.bucket(key);
        self.entries[self.buckets[b] as usize..self.buckets[b + 1] as usize]
            .iter()
            .filter(move |e| e.key == key)
    }
}

/// The four-byte anchors: a Bloom filter of their grams, and the keywords they stand for by
/// the anchor's bytes. An anchor that lets the byte before or after a short keyword be any is
/// 128 grams in the filter but one entry, in a small table of its own, looked up by the other
/// three bytes: the tables stay in cache.
/// The filter has `BITS` bits (`WORDS` = 2^(BITS-6) words: constants, so that the index is in
/// bounds by its type and the shifts are immediates).
#[derive(Debug)]
struct Anchors<const BITS: u32, const WORDS: usize> {
    /// Two bits (in one word) per anchor gram.
    filter: Box<[u64; WORDS]>,
    /// Anchors of four fixed bytes.
    whole: Table,
    /// Anchors of a keyword's three bytes and any byte after them (key: the gram's low three).
    after: Table,
    /// Anchors of any byte and a keyword's first three (key: the gram's high three).
    before: Table,
}

impl<const BITS: u32, const WORDS: usize> Anchors<BITS, WORDS> {
    /// The anchors: of four fixed bytes, of three and any byte after, of any byte and three.
    fn new(whole: Vec<Entry>, after: Vec<Entry>, before: Vec<Entry>) -> Self {
        assert_eq!(WORDS, 1 << (BITS - 6), "WORDS is 2^(BITS-6)");
        let mut filter: Box<[u64; WORDS]> = vec![0u64; WORDS].into_boxed_slice().try_into().expect("WORDS words");
        let grams = whole.iter().map(|e| e.key).chain(any_byte().flat_map(|b| {
            let after = after.iter().map(move |e| e.key | b << 24);
            let before = before.iter().map(move |e| b | e.key << 8);
            after.chain(before)
        }));
        for g in grams {
            let (word, mask) = Self::hash(g);
            filter[word] |= mask;
        }
        Anchors {
            filter,
            whole: Table::new(whole),
            after: Table::new(after),
            before: Table::new(before),
        }
    }

    /// The filter's word and the two bits in it for a folded gram (Fibonacci hashing: the top
    /// bits of a multiply pick the word, lower ones the bits).
    #[inline(always)]
    fn hash(gram: u32) -> (usize, u64) {
        let h = u64::from(gram).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let word = (h >> (64 - (BITS - 6))) as usize % WORDS;
        (word, TWO_BITS[(h >> 20) as usize % 4096])
    }

    /// The folded gram `g`'s bits that the filter lacks: none if it may be an anchor (no
    /// branch).
    #[inline(always)]
    fn missing(&self, g: u32) -> u64 {
        let (word, mask) = Self::hash(g);
        mask & !self.filter[word]
    }

    /// [`Anchors::confirm`] for each of the grams at even offsets (0, 2, 4) in the folded eight
    /// bytes `x` at `at` that pass the filter.
    #[cold]
    #[inline(never)]
    fn confirm_three(
        &self,
        keywords: &[Box<[u8]>],
        haystack: &[u8],
        at: usize,
        x: u64,
        hit: &mut impl FnMut(usize, usize),
    ) {
        for k in [0, 2, 4] {
            let g = (x >> (8 * k)) as u32;
            if self.missing(g) == 0 {
                self.confirm(keywords, haystack, at + k, g, hit);
            }
        }
    }

    /// Compares in full each keyword with an anchor that the folded gram `g` at `at` matches.
    /// A keyword's starts come in rising order: at one position, its anchors of four fixed
    /// bytes are in falling order of offset and start no later than its others.
    #[inline(always)]
    fn confirm(&self, keywords: &[Box<[u8]>], haystack: &[u8], at: usize, g: u32, hit: &mut impl FnMut(usize, usize)) {
        let candidates = self
            .whole
            .get(g)
            .chain(self.after.get(g & 0x00ff_ffff))
            .chain(self.before.get(g >> 8));
        for e in candidates {
            let Some(start) = at.checked_add_signed(-(e.offset as isize)) else {
                continue;
            };
            if let Some(bytes) = haystack.get(start..start + 8) {
                let bytes = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                if fold64(bytes) & e.head_mask != e.head & e.head_mask {
                    continue;
                }
            }
            let keyword = &keywords[e.keyword as usize];
            if occurs_at(haystack, start, keyword) {
                hit(e.keyword as usize, start);
            }
        }
    }
}

/// The keywords, searchable; see the module's documentation.
#[derive(Debug)]
pub struct Keywords {
    /// The keywords, lowercase, in the caller's order (a hit names its index here).
    keywords: Vec<Box<[u8]>>,
    /// Four-byte anchors of the keywords of three bytes or more: 2^21 bits (256 KiB, held in
    /// L2) for the built-in rules' ~28,000 anchor grams (short keywords' neighbouring bytes
    /// included), about two bits set per word, so a gram that is no anchor passes with a
    /// chance near 0.15 %. With one bit per gram it was 1.3 %, and the out-of-line comparisons
    /// were a third of the pass (measured on 242 MB of crates' sources, one thread: ~850 MB/s
    /// with one bit, ~950 with two).
    four: Anchors<21, { 1 << 15 }>,
    /// The three-byte keywords (a few dozen), for the end of a blob.
    three_letter: Vec<u32>,
    /// Keywords of one or two bytes: each one's index and the offset of the byte to look for.
    short: Vec<(u32, usize)>,
}

impl Keywords {
    /// The searcher for `keywords` (any case; matched ASCII case-insensitively). An empty
    /// keyword never matches.
    pub fn new<S: AsRef<str>>(keywords: &[S]) -> Keywords {
        let keywords: Vec<Box<[u8]>> = keywords
            .iter()
            .map(|k| k.as_ref().as_bytes().to_ascii_lowercase().into_boxed_slice())
            .collect();
        let (mut whole, mut after, mut before) = (Vec::new(), Vec::new(), Vec::new());
        let (mut last, mut short) = (Vec::new(), Vec::new());
        for (i, k) in keywords.iter().enumerate() {
            let three = || fold(gram(&[k[0], k[1], k[2], 0])) & 0x00ff_ffff;
            match k.len() {
                0 => {}
                // The byte least likely in text: punctuation before digits before letters.
                1 | 2 => short.push((
                    i as u32,
                    (0..k.len())
                        .max_by_key(|o| (!k[*o].is_ascii_alphanumeric(), k[*o].is_ascii_digit()))
                        .expect("one byte or two"),
                )),
                // At an even offset of the blob, a three-byte keyword and any byte after it;
                // only the very end of a blob, with no byte after, is looked at on its own.
                // At an odd offset, any byte before it and the keyword.
                3 => {
                    after.push(Entry::new(k, i, three(), 0));
                    before.push(Entry::new(k, i, three(), -1));
                    last.push(i as u32);
                }
                // Four bytes: the keyword itself at an even offset, any byte before it and its
                // first three at an odd one.
                4 => {
                    whole.push(Entry::new(k, i, fold(gram(k)), 0));
                    before.push(Entry::new(k, i, three(), -1));
                }
                // Two neighbouring grams, one of which starts at an even offset.
                _ => {
                    let o = anchor_pair(k);
                    for offset in [o + 1, o] {
                        whole.push(Entry::new(k, i, fold(gram(&k[offset..])), offset as i32));
                    }
                }
            }
        }
        Keywords {
            four: Anchors::new(whole, after, before),
            three_letter: last,
            keywords,
            short,
        }
    }

    /// Calls `hit(keyword, start)` for every occurrence of every keyword in `haystack`. For
    /// one keyword the starts come in increasing order; across keywords in no set order.
    pub fn for_each(&self, haystack: &[u8], mut hit: impl FnMut(usize, usize)) {
        for (k, offset) in &self.short {
            let keyword = &self.keywords[*k as usize];
            let b = keyword[*offset];
            for at in memchr::memchr2_iter(b.to_ascii_lowercase(), b.to_ascii_uppercase(), haystack) {
                let Some(start) = at.checked_sub(*offset) else {
                    continue;
                };
                if occurs_at(haystack, start, keyword) {
                    hit(*k as usize, start);
                }
            }
        }
        let keywords = &self.keywords[..];
        // Only grams at even offsets are tested. Eight bytes at a time hold three of them: the
        // filter is read with no branch, and one test tells whether any of the three needs a
        // closer look (out of line, so that the loop keeps its values in registers).
        let mut at = 0;
        while at + 8 <= haystack.len() {
            let x = fold64(u64::from_le_bytes(haystack[at..at + 8].try_into().expect("8 bytes")));
            let pass = |g: u64| u8::from(self.four.missing(g as u32) == 0);
            if pass(x) | pass(x >> 16) | pass(x >> 32) != 0 {
                self.four.confirm_three(keywords, haystack, at, x, &mut hit);
            }
            at += 6;
        }
        while at + 4 <= haystack.len() {
            let g = fold(gram(&haystack[at..]));
            if self.four.missing(g) == 0 {
                self.four.confirm(keywords, haystack, at, g, &mut hit);
            }
            at += 2;
        }
        // A three-byte keyword at the very end, at an even offset, has no fourth byte to make
        // its gram (at an odd one, the gram of the byte before it and itself was tested).
        if let Some(end) = haystack.len().checked_sub(3).filter(|end| end % 2 == 0) {
            for k in &self.three_letter {
                if occurs_at(haystack, end, &keywords[*k as usize]) {
                    hit(*k as usize, end);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (keyword, start), sorted, by the slow obvious method.
    fn naive(keywords: &[&str], haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for (k, word) in keywords.iter().enumerate() {
            let word = word.as_bytes();
            if word.is_empty() {
                continue;
            }
            for start in 0..haystack.len() {
                if haystack[start..].len() >= word.len()
                    && haystack[start..start + word.len()].eq_ignore_ascii_case(word)
                {
                    all.push((k, start));
                }
            }
        }
        all.sort_unstable();
        all
    }

    fn found(keywords: &[&str], haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        let mut last = vec![None; keywords.len()];
        Keywords::new(keywords).for_each(haystack, |k, start| {
            assert!(last[k] < Some(start), "keyword {k}: start {start} after {:?}", last[k]);
            last[k] = Some(start);
            all.push((k, start));
        });
        all.sort_unstable();
        all
    }

    #[test]
    fn finds_every_overlapping_occurrence_in_any_case_at_both_ends() {
        let keywords = [
            "aaa", "aa", "password", "PASS", "q~", "ghp_", "x", "", "word", "sk_live_",
        ];
        for hay in [
            &b"aaaa"[..],
            b"Password=x; PASSWORD pass q~Q~ GHP_ ghp sk_LIVE_",
            b"word",
            b"wor",
            b"a",
            b"",
            b"\xffpassword\x00q~",
        ] {
            assert_eq!(
                found(&keywords, hay),
                naive(&keywords, hay),
                "{:?}",
                String::from_utf8_lossy(hay)
            );
        }
    }

    #[test]
    fn finds_keywords_of_every_length_at_odd_and_even_offsets_and_at_both_ends() {
        let keywords = ["ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefghijk"];
        for k in keywords {
            for before in ["", "x", "xy", "xyz"] {
                for after in ["", "x", "xy", "xyz"] {
                    let hay = format!("{before}{}{after}", k.to_uppercase());
                    assert_eq!(
                        found(&keywords, hay.as_bytes()),
                        naive(&keywords, hay.as_bytes()),
                        "{hay:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn agrees_with_the_obvious_search_on_random_text_from_a_small_alphabet() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"abAB_-~ \n";
        for _ in 0..200 {
            let keywords: Vec<String> = (0..rng.gen_range(1..40))
                .map(|_| {
                    (0..rng.gen_range(1..7))
                        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                        .collect()
                })
                .collect();
            let keywords: Vec<&str> = keywords.iter().map(String::as_str).collect();
            let hay: Vec<u8> = (0..rng.gen_range(0..300))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            assert_eq!(found(&keywords, &hay), naive(&keywords, &hay), "{keywords:?}");
        }
    }

    #[test]
    fn anchors_on_the_rarest_gram() {
        let list = include_str!("common-grams.txt");
        for (rank, line) in list.lines().enumerate() {
            let gram: [u8; 4] = line.replace('~', " ").as_bytes().try_into().unwrap();
            assert_eq!(common_rank(gram), Some(rank), "{line:?}");
        }
        assert!(list.lines().count() >= 4000 && COMMON_GRAMS.len().is_power_of_two());
        assert_eq!(common_rank(*b"q~x!"), None);
        assert!(common_rank(*b"cons").unwrap() < common_rank(*b"onsu").unwrap());
        // Not the common "cons" or "onsu": "onsu" and "nsul" have the rarer commoner gram.
        assert_eq!(anchor_pair(b"consul"), 1);
        assert_eq!(anchor_pair(b"abcde"), 0);
    }
}
