#!/bin/bash
# tests/bench/plot.sh RESULTS_DIR PNG_DIR - the PNG plots of docs/benchmarks.md,
# made with gnuplot from the .dat files of svcplot and fs.sh (those missing are
# skipped).
set -u
R=${1:?usage: plot.sh RESULTS_DIR PNG_DIR} P=${2:?usage: plot.sh RESULTS_DIR PNG_DIR}
mkdir -p "$P"
command -v gnuplot >/dev/null || { echo "plot: gnuplot missing (gnuplot-nox)" >&2; exit 1; }
common="set terminal pngcairo size 800,500 font ',10'; set grid; set key top left;"
plot() { # name data script
    [ -s "$R/$2" ] || { echo "plot: no $2, $1.png skipped" >&2; return 0; }
    gnuplot -e "$common set output '$P/$1.png'; d='$R/$2'; $3" || echo "plot: $1 failed" >&2
}
plot latency-size size.dat "set logscale xy; set xlabel 'input (bytes)'; set ylabel 'latency (us)';
 set title 'COMPRESS latency against input size (8 slots of 1 MiB)';
 set format x '%.0s%cB';
 plot d u 1:2 w lp t 'in-process snappy', d u 1:3 w lp t 'tinyd sync (tiny\\_run)',
      d u 1:4 w lp t 'tinyd async (submit + wait)'"
plot latency-slots slots.dat "set logscale x; set xlabel 'slot size (bytes)'; set ylabel 'latency (ms)';
 set title '16 MiB COMPRESS latency against slot size'; set format x '%.0s%cB'; set key top right;
 plot d u 1:2 w lp t '1 slot', d u 1:3 w lp t '3 slots', d u 1:4 w lp t '5 slots'"
plot throughput-clients clients.dat "set xlabel 'client processes'; set ylabel 'MB/s';
 set title 'Aggregate COMPRESS throughput (2 tinyd workers, 2 cores)'; set yrange [0:*]; set xtics (1,2,4,8);
 plot d u 1:2 w lp t 'tinyd, all clients', d u 1:3 w l dt 2 t 'in-process snappy, 1 thread'"
plot fairness fair.dat "set xlabel 'clients streaming 16 MiB requests'; set ylabel '4 KiB round trip (us)';
 set title 'Fairness: a 4 KiB client under load'; set xtics 1; set logscale y;
 plot d u 1:2 w lp t 'p50', d u 1:3 w lp t 'p99'"
plot fs-speed fs-speed.dat "set style data histograms; set style histogram clustered gap 1;
 set style fill solid 0.8 border -1; set ylabel 'MB/s'; set y2label 'thousand reads/s';
 set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]; set key top right;
 set title 'Filesystems: sequential write, cold sequential read, cold random 4 KiB reads';
 plot d u 2:xtic(1) t 'seq write (MB/s)', d u 3 t 'seq read (MB/s)', d u 4 axes x1y2 t 'random reads (k/s, right axis)'"
plot fs-tree fs-tree.dat "set style data histograms; set style histogram clustered gap 1;
 set style fill solid 0.8 border -1; set ylabel 'seconds'; set yrange [0:*]; set key top right;
 set title 'Small-file tree: untar and cold ls -lR';
 plot d u 2:xtic(1) t 'untar + sync', d u 3 t 'ls -lR'"
