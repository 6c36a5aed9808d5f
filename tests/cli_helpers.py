"""What the command-line tests share: running ``bayesgmm`` in-process and reading its errors."""

from bayesgmm import cli


def run(capsys, *argv):
    """Run ``bayesgmm *argv``; return its exit code, standard output and standard error."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, expected_code, *fragments):
    """The command failed with ``expected_code`` and one error line naming ``fragments``."""
    assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayesgmm: error: ")
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in lines[0]
