"""The shipped galaxies data: MASS's version of Roeder's 82 velocities."""

import numpy as np
import pytest

from bayesgmm.datasets import load_galaxies


def test_galaxies_is_mass_version_with_its_typo():
    X = load_galaxies()
    assert X.shape == (82, 1)
    velocities = X[:, 0]
    assert velocities[0] == 9172.0 and velocities[-1] == 34279.0
    assert velocities[77] == 26690.0  # Roeder's table has 26960 here
    assert np.all(np.diff(velocities) > 0)
    # mean(MASS::galaxies) in R.
    assert velocities.mean() == pytest.approx(20828.17, abs=0.005)


def test_galaxies_as_frame_and_bad_flag():
    frame = load_galaxies(as_frame=True)
    assert frame.columns.tolist() == ["velocity"]
    np.testing.assert_array_equal(frame.to_numpy(), load_galaxies())
    with pytest.raises(TypeError, match="^as_frame:"):
        load_galaxies(as_frame="yes")
