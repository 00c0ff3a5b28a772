"""read_muscle_parameters / replace_with_degroote against the .osim text itself (parsed independently)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from pimsk.errors import FileFormatError

pytestmark = [pytest.mark.opensim, pytest.mark.data]

THELEN = "opensim-models/Models/Gait2392_Simbody/gait2392_thelen2003muscle.osim"
MILLARD = "opensim-models/Models/Gait2392_Simbody/gait2392_millard2012muscle.osim"
WRIST = "opensim-models/Models/WristModel/wrist.osim"
KNEE = ["rect_fem_r", "vas_lat_r", "bifemsh_r", "med_gas_r", "semiten_r"]
WRIST_MUSCLES = ["ECRB", "ECRL", "ECU_pre-surgery", "FCR", "FCU"]


def xml_muscles(path, tag: str) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {el.get("name"): el for el in root.iter(tag)}


def num(el: ET.Element, name: str) -> float:
    return float(el.find(name).text)


def test_thelen_model_parameters_from_xml(opensim_module, data_dir):
    from pimsk.osim.muscle_params import read_muscle_parameters

    p = read_muscle_parameters(data_dir / THELEN, KNEE)
    assert p.names == tuple(KNEE)
    xml = xml_muscles(data_dir / THELEN, "Thelen2003Muscle")
    for j, name in enumerate(KNEE):
        el = xml[name]
        assert p.max_isometric_force_n[j].item() == num(el, "max_isometric_force")
        assert p.optimal_fiber_length_m[j].item() == num(el, "optimal_fiber_length")
        assert p.tendon_slack_length_m[j].item() == num(el, "tendon_slack_length")
        assert p.pennation_angle_at_optimal_rad[j].item() == num(el, "pennation_angle_at_optimal")
        assert p.max_contraction_velocity_lopt_per_s[j].item() == num(el, "max_contraction_velocity")
        # OpenSim's replaceMuscles maps Thelen's FmaxTendonStrain / FmaxMuscleStrain and time constants.
        assert p.tendon_strain_at_one_norm_force[j].item() == num(el, "FmaxTendonStrain")
        assert p.passive_fiber_strain_at_one_norm_force[j].item() == num(el, "FmaxMuscleStrain")
        assert p.activation_time_constant_s[j].item() == num(el, "activation_time_constant")
        assert p.deactivation_time_constant_s[j].item() == num(el, "deactivation_time_constant")
        assert p.fiber_damping[j].item() == 0.0  # Thelen has no damping: OpenSim sets 0
        assert p.active_force_width_scale[j].item() == 1.0
        assert not p.ignore_tendon_compliance[j].item()


def test_millard_model_maps_damping_and_curve_strains(opensim_module, data_dir):
    from pimsk.osim.muscle_params import read_muscle_parameters

    p = read_muscle_parameters(data_dir / MILLARD, ["med_gas_r"])
    # Millard2012EquilibriumMuscle documented defaults (the file leaves them implicit): fiber_damping 0.1,
    # FiberForceLengthCurve strain at one norm force 0.7, TendonForceLengthCurve 0.049.
    assert p.fiber_damping.item() == 0.1
    assert p.passive_fiber_strain_at_one_norm_force.item() == 0.7
    assert p.tendon_strain_at_one_norm_force.item() == 0.049
    assert p.max_isometric_force_n.item() == 1558.0


def test_wrist_schutte_muscles_use_base_properties(opensim_module, data_dir):
    from pimsk.osim.muscle_params import load_degroote_model, read_muscle_parameters

    p = read_muscle_parameters(data_dir / WRIST, WRIST_MUSCLES)
    xml = xml_muscles(data_dir / WRIST, "Schutte1993Muscle_Deprecated")
    for j, name in enumerate(WRIST_MUSCLES):
        el = xml[name]
        assert p.max_isometric_force_n[j].item() == num(el, "max_isometric_force")
        assert p.optimal_fiber_length_m[j].item() == num(el, "optimal_fiber_length")
        assert p.tendon_slack_length_m[j].item() == num(el, "tendon_slack_length")
        assert p.pennation_angle_at_optimal_rad[j].item() == num(el, "pennation_angle_at_optimal")
    # Unmapped fields: DeGrooteFregly2016Muscle defaults (OpenSim 4.6 documentation).
    assert p.tendon_strain_at_one_norm_force.tolist() == [0.049] * 5
    assert p.passive_fiber_strain_at_one_norm_force.tolist() == [0.6] * 5
    assert p.activation_time_constant_s.tolist() == [0.015] * 5
    assert p.deactivation_time_constant_s.tolist() == [0.06] * 5
    # The replacement keeps the path: same MTU length as the original model in the default pose.
    osim = opensim_module
    original = osim.Model(str(data_dir / WRIST))
    s0 = original.initSystem()
    replaced = load_degroote_model(data_dir / WRIST, WRIST_MUSCLES)
    s1 = replaced.initSystem()
    for name in WRIST_MUSCLES:
        mu = replaced.getMuscles().get(name)
        assert mu.getConcreteClassName() == "DeGrooteFregly2016Muscle"
        assert mu.getMinControl() == original.getMuscles().get(name).getMinControl()
        assert math.isclose(mu.getLength(s1), original.getMuscles().get(name).getLength(s0), rel_tol=1e-14)


def test_model_argument_is_not_modified(opensim_module, data_dir):
    from pimsk.osim.muscle_params import read_muscle_parameters

    model = opensim_module.Model(str(data_dir / THELEN))
    p = read_muscle_parameters(model, ["soleus_r"])
    assert p.names == ("soleus_r",)
    assert model.getMuscles().get("soleus_r").getConcreteClassName() == "Thelen2003Muscle"


def test_errors_name_file_and_muscle(opensim_module, data_dir, tmp_path):
    from pimsk.osim.muscle_params import read_muscle_parameters, replace_with_degroote

    with pytest.raises(FileFormatError, match="not_a_muscle.*not in the model") as info:
        read_muscle_parameters(data_dir / WRIST, ["FCR", "not_a_muscle"])
    assert "wrist.osim" in str(info.value) and "FCU" in str(info.value)  # hint lists the available muscles
    with pytest.raises(FileFormatError, match="not found"):
        read_muscle_parameters(tmp_path / "missing.osim")
    bad = tmp_path / "bad.osim"
    bad.write_text("<OpenSimDocument><Model><broken></OpenSimDocument>")
    with pytest.raises(FileFormatError, match="bad.osim"):
        read_muscle_parameters(bad)
    model = opensim_module.Model(str(data_dir / WRIST))
    with pytest.raises(Exception, match="Schutte1993Muscle_Deprecated"):
        replace_with_degroote(model, allow_unsupported=False)
