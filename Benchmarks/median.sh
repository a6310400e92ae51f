# Sourced by the load scripts: the median of each column over the lines on standard input.
median() {
    awk '{ for (i = 1; i <= NF; i++) col[i, NR] = $i } END {
        for (i = 1; i <= NF; i++) {
            n = 0; for (r = 1; r <= NR; r++) v[++n] = col[i, r]
            for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
            printf "%s%s", v[int((n + 1) / 2)], (i < NF ? " " : "\n")
        } }'
}
