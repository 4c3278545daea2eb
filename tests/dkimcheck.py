"""An independent DKIM verifier for tests: Perl's Mail::DKIM (Debian's libmail-dkim-perl, the
one SpamAssassin uses), with its DNS lookups answered from the keys the test gives it."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy

# Mail::DKIM asks Mail::DKIM::DNS::query for each key; this answers from a file of
# "<selector>._domainkey.<domain> TAB <TXT record>" lines, and nothing leaves the machine.
VERIFY_PL = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Net::DNS;
my %keys;
open(my $fh, '<', $ARGV[0]) or die "keys: $!";
while (my $line = <$fh>) {
    chomp $line;
    my ($name, $txt) = split /\t/, $line, 2;
    $keys{lc $name} = $txt;
}
{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        my $txt = $keys{lc $domain};
        if (!defined $txt) { $@ = 'NXDOMAIN'; return; }
        $@ = 'NOERROR';
        my @strings = unpack('(A255)*', $txt);
        return (Net::DNS::RR->new(name => $domain, type => 'TXT', txtdata => [@strings]));
    };
}
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) { $line =~ s/\r?\n\z/\015\012/; $dkim->PRINT($line); }
$dkim->CLOSE;
foreach my $sig ($dkim->signatures) {
    print join("\t", $sig->algorithm, $sig->selector, $sig->result, $sig->result_detail), "\n";
}
"""


@dataclass(frozen=True)
class Checked:
    """One signature as Mail::DKIM judged it."""

    algorithm: str
    selector: str
    result: str  # pass, fail, invalid, none
    detail: str


def mail_dkim(raw: bytes, records: dict[str, str], tmp: Path) -> list[Checked]:
    """Each DKIM signature of `raw` as Mail::DKIM judges it, keys from `records`."""
    script, keys = tmp / "verify.pl", tmp / "keys.tsv"
    script.write_text(VERIFY_PL)
    keys.write_text("".join(f"{name}\t{txt}\n" for name, txt in records.items()))
    done = subprocess.run(
        ["perl", str(script), str(keys)], input=raw, capture_output=True, check=True, timeout=60
    )
    lines = done.stdout.decode().splitlines()
    return [Checked(*(line.split("\t", 3) + [""] * 4)[:4]) for line in lines]


def dkimpy_results(raw: bytes, records: dict[str, str]) -> list[bool]:
    """dkimpy's verdict on each signature, keys served from `records`."""

    def dns(name: bytes | str, timeout: int = 5) -> bytes:
        name = name.decode() if isinstance(name, bytes) else name
        return records.get(name.rstrip("."), "").encode()

    checker = dkimpy.DKIM(raw)
    count = len(re.findall(rb"(?im)^DKIM-Signature:", raw.split(b"\r\n\r\n", 1)[0]))
    return [_verified(checker, i, dns) for i in range(count)]


def _verified(checker: dkimpy.DKIM, index: int, dns) -> bool:
    try:
        return bool(checker.verify(idx=index, dnsfunc=dns))
    except dkimpy.ValidationError:  # a body hash mismatch is raised, not returned
        return False


def key_records(settings) -> dict[str, str]:
    """The TXT record of every configured DKIM key, by the name it is published at."""
    from clarion.delivery import dkim

    return {
        f"{s.selector}._domainkey.{s.domain}": s.dns_record()
        for s in dkim.signers_for(settings, ("from",))
    }
