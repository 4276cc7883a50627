from adaptor.data.demo.iu_reports import finding_from_mesh, read_iu_reports
from adaptor.data.demo.render import Finding


def test_mesh_terms_map_to_findings_with_location() -> None:
    assert finding_from_mesh("Opacity/lung/base/left") == Finding("opacity", "left", "lower")
    assert finding_from_mesh("Pleural Effusion/right/small") == Finding(
        "effusion", "right", "lower", severity=0.7
    )
    assert finding_from_mesh("Calcified Granuloma/lung/upper lobe/right/multiple") == Finding(
        "nodule", "right", "upper", count=3
    )
    assert finding_from_mesh("Lung/hyperdistention") == Finding("hyperinflation")
    assert finding_from_mesh("Costophrenic Angle/left/blunted") == Finding("effusion", "left", "lower")
    assert finding_from_mesh("normal") is None
    assert finding_from_mesh("Thoracic Vertebrae/degenerative") is None


def test_reports_are_read_from_the_installed_package_in_a_stable_order() -> None:
    reports = read_iu_reports(limit=50)
    assert len(reports) == 50
    assert [r.uid for r in reports] == [r.uid for r in read_iu_reports(limit=50)]
    assert all(r.findings or r.impression for r in reports[:10])
    normal = [r for r in reports if r.mesh == ("normal",)]
    assert normal and all(not r.rendered for r in normal)
