from jupyter_mlops.tags import parse_tags, suggest_stage_name


def test_native_tags_are_read():
    tags = parse_tags(["stage:train", "after:load", "metrics", "model:clf", "unrelated"])
    assert tags.stage == "train"
    assert tags.after == ["load"]
    assert tags.metrics and tags.models == ["clf"]
    assert not tags.kale and not tags.problems


def test_kale_dialect_maps_to_native():
    assert parse_tags(["block:prep"]).stage == "prep"
    assert parse_tags(["step:prep"]).stage == "prep"
    assert parse_tags(["block:b", "prev:a", "prev:c"]).after == ["a", "c"]
    assert parse_tags(["imports"]).setup and parse_tags(["functions"]).setup
    assert parse_tags(["pipeline-parameters"]).parameters
    assert parse_tags(["pipeline-metrics"]).metrics
    assert parse_tags(["skip"]).skip
    assert parse_tags(["block:x"]).kale


def test_invalid_stage_names_are_problems_with_a_suggestion():
    tags = parse_tags(["stage:Train Model"])
    assert tags.stage is None
    assert "train_model" in tags.problems[0].message
    assert parse_tags(["stage:1st"]).problems
    assert parse_tags(["after:Bad-Name"]).problems
    assert parse_tags(["model:not a name"]).problems


def test_two_stages_on_one_cell_is_a_problem():
    tags = parse_tags(["stage:a", "block:b"])
    assert tags.stage == "a"
    assert "two stages" in tags.problems[0].message


def test_roles_list_conflicts():
    assert parse_tags(["stage:a", "skip"]).roles == ["stage", "skip"]
    assert parse_tags(["setup"]).roles == ["setup"]


def test_non_string_and_foreign_tags_are_ignored():
    tags = parse_tags(["hide-input", 3, None, "raises-exception"])  # type: ignore[list-item]
    assert tags.roles == [] and not tags.problems


def test_suggest_stage_name():
    assert suggest_stage_name("Load Data!") == "load_data"
    assert suggest_stage_name("2nd") == "stage_2nd"
    assert suggest_stage_name("") == "stage"
