// Host harness for sealkit's CUDA kernels: builds src/gpu/kernels/*.cuh with the system C++
// compiler (no CUDA) and answers requests on stdin, so tests/gpu_kernels_host.rs compares
// the kernels' field arithmetic and Poseidon with blstrs and neptune.
//
// Requests, whitespace-separated, numbers in hex; one answer line each (words in hex):
//   T arity half partial nwords w...          load an arity's constant table   -> "ok"
//   M a0..a3 b0..b3                           canonical a·b via Montgomery form -> 4 words
//   A a b / S a b                             (a + b) / (a − b) mod p           -> 4 words
//   R a                                       Montgomery form of a              -> 4 words
//   H arity n elem_stride hash_stride nwords w...
//                                             n hashes exactly as a kernel thread computes
//                                             them -> n lines of 4 words, then "ok" or "bad"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "poseidon.cuh"

struct Table {
    int half, partial;
    std::vector<sk_fr> elems;
};

static sk_u64 word() {
    char buf[64];
    if (std::scanf("%63s", buf) != 1) {
        std::fprintf(stderr, "harness: truncated input\n");
        std::exit(2);
    }
    return std::strtoull(buf, nullptr, 16);
}

static sk_fr elem() {
    sk_fr f;
    for (int i = 0; i < 4; i++) f.l[i] = word();
    return f;
}

static void print(sk_fr f) {
    std::printf("%016llx %016llx %016llx %016llx\n", f.l[0], f.l[1], f.l[2], f.l[3]);
}

template <int W>
static bool hash_all(const std::vector<sk_u64> &in, sk_u64 es, sk_u64 hs, sk_u64 n,
                     const Table &t, std::vector<sk_u64> &out) {
    bool ok = true;
    for (sk_u64 h = 0; h < n; h++)
        ok = sk_hash_strided_one<W>(in.data(), es, hs, h, t.elems.data(), t.half, t.partial,
                                    out.data()) &&
             ok;
    return ok;
}

int main() {
    std::map<int, Table> tables;
    char op[8];
    while (std::scanf("%7s", op) == 1) {
        switch (op[0]) {
        case 'T': {
            int arity = (int)word();
            Table t;
            t.half = (int)word();
            t.partial = (int)word();
            sk_u64 n = word();
            for (sk_u64 i = 0; i < n / 4; i++) t.elems.push_back(elem());
            sk_layout l = sk_poseidon_layout(arity + 1, t.half, t.partial);
            if ((sk_u64)l.len != t.elems.size()) {
                std::printf("layout mismatch: %d elements expected, %zu given\n", l.len,
                            t.elems.size());
                return 1;
            }
            tables[arity] = t;
            std::printf("ok\n");
            break;
        }
        case 'M': {
            sk_fr a = elem(), b = elem();
            print(sk_from_mont(sk_mul(sk_to_mont(a), sk_to_mont(b))));
            break;
        }
        case 'A': {
            sk_fr a = elem(), b = elem();
            print(sk_add(a, b));
            break;
        }
        case 'S': {
            sk_fr a = elem(), b = elem();
            print(sk_sub(a, b));
            break;
        }
        case 'R':
            print(sk_to_mont(elem()));
            break;
        case 'H': {
            int arity = (int)word();
            sk_u64 n = word(), es = word(), hs = word(), nw = word();
            std::vector<sk_u64> in(nw), out(4 * n);
            for (auto &w : in) w = word();
            const Table &t = tables.at(arity);
            bool ok;
            switch (arity) {
            case 2: ok = hash_all<3>(in, es, hs, n, t, out); break;
            case 8: ok = hash_all<9>(in, es, hs, n, t, out); break;
            case 11: ok = hash_all<12>(in, es, hs, n, t, out); break;
            case 16: ok = hash_all<17>(in, es, hs, n, t, out); break;
            default: std::printf("no arity %d\n", arity); return 1;
            }
            for (sk_u64 h = 0; h < n; h++) {
                sk_fr f = {{out[4 * h], out[4 * h + 1], out[4 * h + 2], out[4 * h + 3]}};
                print(f);
            }
            std::printf(ok ? "ok\n" : "bad\n");
            break;
        }
        default:
            std::printf("unknown request %s\n", op);
            return 1;
        }
        std::fflush(stdout);
    }
    return 0;
}
