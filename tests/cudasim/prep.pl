#!/usr/bin/perl
# prep.pl: a cuda/*.cu file as host C++ for cudasim (see cudasim.h):
# kernel launches become gsim::launch calls and extern __shared__ arrays
# pointers to the block's dynamic shared memory.  Line numbers are kept.
use strict;
use warnings;

my $path = shift or die "usage: prep.pl FILE.cu\n";
open(my $fh, '<', $path) or die "prep.pl: cannot read $path: $!\n";
local $/;
my $s = <$fh>;
close $fh;

my $n = 0;
$s =~ s{(\w+)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;}{
	my ($k, $cfg, $args) = ($1, $2, $3);
	$n++;
	"gsim::launch(gsim::cfg($cfg), \"$k\", $k" . ($args =~ /\S/ ? ", $args" : "") . ");";
}gse;
$s =~ s{extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w ]+?)\s+(\w+)\s*\[\s*\]\s*;}
       {$1 *$2 = ($1 *)gsim::dyn_smem();}g;
die "prep.pl: a launch was not understood in $path\n" if $s =~ /<<</;
print "#line 1 \"$path\"\n", $s;
