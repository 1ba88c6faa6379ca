"""The run configuration (beyond/config.py): every setting named once, and everything else read from it."""

import inspect
import math
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import tune  # noqa: E402

import dqn  # noqa: E402
from beyond import UsageError, config  # noqa: E402
from beyond.agents import make_agent  # noqa: E402
from beyond.deep import HiddenLayers  # noqa: E402
from beyond.flags import build_parser, file_settings, parse_args, settings_from_file  # noqa: E402
from beyond.nstep import NStepReturns  # noqa: E402
from beyond.prioritized import PrioritizedReplay  # noqa: E402
from beyond.replay_ratio import ReplayRatio  # noqa: E402
from beyond.tasks import RL_ZOO_START, TASKS  # noqa: E402

RANGED = [s for s in config.SETTINGS.values() if s.least is not None]


def test_every_setting_is_one_flag_with_its_default():
    parsed = vars(build_parser().parse_args([]))
    assert parsed == {name: setting.default for name, setting in config.SETTINGS.items()}
    help_text = build_parser().format_help()
    assert all(setting.option in help_text for setting in config.SETTINGS.values())


def test_the_parser_without_defaults_holds_only_what_argv_gives():
    given = vars(build_parser(defaults=False).parse_args(["--lr", "0.1", "--no-double", "--quiet"]))
    assert given == dict(lr=0.1, double=False, quiet=True)


def test_the_blogs_values_are_the_agents_defaults():
    for name, value in dqn.hyperparameters.items():
        assert config.SETTINGS[name].default == value and config.SETTINGS[name].agent
    assert type(make_agent(4, 2, seed=0, **config.EXTENSION_DEFAULTS)) is dqn.DQN


@pytest.mark.parametrize("mixin", [HiddenLayers, NStepReturns, PrioritizedReplay, ReplayRatio])
def test_an_extension_takes_its_values_only_from_the_run_configuration(mixin):
    own = [p for p in inspect.signature(mixin.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert own and all(p.default is p.empty and p.name in config.SETTINGS for p in own)


def test_presets_task_rows_and_the_tuners_trials_name_only_settings():
    partials = [*config.PRESETS.values(), *RL_ZOO_START.values(), *(task.tuned for task in TASKS.values())]
    partials += [tune.SPACE, dict(train_every=1, hidden_layers=1, per_alpha=0.6)]
    for values in partials:
        assert set(values) <= set(config.SETTINGS)
    with pytest.raises(KeyError):
        tune.as_flags(dict(not_a_setting=1))


def outside(setting):
    """Values outside the setting's range: below its least, above its most, or not a number."""
    if setting.kind is int:
        below = st.integers(max_value=setting.least - 1, min_value=setting.least - 10**12)
        return below | st.integers(min_value=setting.most + 1, max_value=setting.most + 10**12)
    return st.floats(max_value=setting.least, exclude_max=True) | st.floats(min_value=setting.most, exclude_min=True)


def refusal(call):
    with pytest.raises(UsageError) as refused:
        call()
    return str(refused.value)


@pytest.fixture(scope="module")
def saved_settings():
    return file_settings(parse_args(["--preset", "tuned"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_value_outside_a_settings_range_is_refused_from_a_flag_and_from_a_file(saved_settings, data):
    setting = data.draw(st.sampled_from(RANGED))
    value = data.draw(outside(setting) | st.just(math.nan) if setting.kind is float else outside(setting))
    from_flag = refusal(lambda: parse_args(["--preset", "tuned", f"{setting.option}={value}"]))
    assert from_flag.startswith(setting.option + " must ")
    if not setting.output:
        from_file = refusal(lambda: settings_from_file({**saved_settings, setting.name: value}))
        assert from_file == from_flag
