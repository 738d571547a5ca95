import torch

from training.calibration import choose_weights, fit_temperature, simplex
from training.rejection import (
    MIN_LANGUAGE_IN_SCOPE,
    MIN_LANGUAGE_OOS,
    Rejection,
    choose_background,
    choose_rejection,
    language_rows,
)


def synthetic_scores(n_in: int = 300, n_oos: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """4 labels; in-scope rows peak on their label with top-1 ~ U(0.4, 1), oos rows ~ U(0.25, 0.6)."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.cat([torch.randint(0, 4, (n_in,), generator=g), torch.full((n_oos,), -1)])
    top = torch.cat([0.4 + 0.6 * torch.rand(n_in, generator=g), 0.25 + 0.35 * torch.rand(n_oos, generator=g)])
    scores = ((1 - top) / 3)[:, None].repeat(1, 4)
    label = targets.clamp(min=0)
    scores[torch.arange(len(targets)), label] = top
    return scores, targets


def test_it_picks_a_threshold_meeting_the_requested_oos_precision() -> None:
    scores, targets = synthetic_scores()
    for precision in (0.7, 0.85, 0.95):
        rule = choose_rejection(scores, targets, target_precision=precision, reject_rate=0.05)
        rejected = ~rule.accepts(scores)
        assert rejected.any()
        assert float((targets[rejected] == -1).float().mean()) >= precision


def test_it_rejects_a_small_share_of_correct_answers_without_oos_examples() -> None:
    scores, targets = synthetic_scores(n_oos=0)
    rule = choose_rejection(scores, targets, target_precision=0.85, reject_rate=0.1)
    share = float((~rule.accepts(scores)).float().mean())
    assert 0.05 <= share <= 0.1


def test_it_fits_a_temperature_that_softens_overconfident_logits() -> None:
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (500,), generator=g)
    logits = torch.randn(500, 5, generator=g)
    logits[torch.arange(500), targets] += 1.0
    assert fit_temperature(logits * 10, targets) > 3.0


def test_it_weighs_the_encoder_that_is_right() -> None:
    targets = torch.arange(10) % 3
    good = torch.log_softmax(torch.nn.functional.one_hot(targets, 3).float() * 3, dim=-1)
    bad = torch.log_softmax(torch.randn(10, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    weights = choose_weights([bad, good], targets)
    assert weights[1] > weights[0] and abs(sum(weights) - 1) < 1e-6
    assert len(simplex(3)) == 66


def test_an_oos_prior_makes_the_precision_check_match_the_expected_traffic() -> None:
    # 3 % oos rows held out, as in clinc150's val; traffic expected to be 20 % oos: the rule may reject more
    scores, targets = synthetic_scores(n_in=600, n_oos=20, seed=2)
    shares = []
    for prior in (0.0, 0.2):
        rule = choose_rejection(scores, targets, target_precision=0.85, reject_rate=0.05, oos_prior=prior)
        rejected = ~rule.accepts(scores)
        recall = float(rejected[targets == -1].float().mean())
        false = int((rejected & (targets >= 0)).sum())
        weight = 1.0 if prior == 0 else prior / (1 - prior) * 600 / 20
        assert weight * recall * 20 >= 0.85 * (weight * recall * 20 + false) - 1e-6
        shares.append(recall)
    assert shares[1] >= shares[0]


def test_a_background_logit_rejects_unfamiliar_messages_that_look_confident() -> None:
    scores, targets = synthetic_scores(n_in=300, n_oos=100, seed=3)
    oos = targets == -1
    scores[oos] = scores[~oos][: int(oos.sum())]  # as confident as in-scope rows: max prob cannot tell them apart
    familiarity = torch.where(oos, torch.full((len(targets),), 2.0), torch.full((len(targets),), 8.0))
    familiarity += torch.randn(len(targets), generator=torch.Generator().manual_seed(0))
    rule = choose_background(scores, familiarity, targets, 0.85, 0.05)
    assert rule.background is not None
    rejected = ~rule.accepts(rule.discount(scores, familiarity))
    assert float(rejected[oos].float().mean()) > 0.8 and float(oos[rejected].float().mean()) >= 0.85
    # too few held-out oos rows: no background logit
    few = torch.cat([torch.arange(300) >= 0, torch.arange(100) < 5])
    assert choose_background(scores[few], familiarity[few], targets[few], 0.85, 0.05).background is None


def test_the_rule_decides_alike_on_score_rows_and_on_ranked_answers() -> None:
    rule = Rejection(threshold=0.5, margin=0.2)
    rows = torch.tensor([[0.6, 0.3], [0.6, 0.45], [0.4, 0.1], [0.5, 0.25]], dtype=torch.float64)
    assert rule.accepts(rows).tolist() == [True, False, False, True]
    assert [rule.accepts_ranked([("a", top), ("b", second)]) for top, second in rows.tolist()] == [
        True,
        False,
        False,
        True,
    ]
    assert rule.accepts_ranked([("a", 0.5)]) and not rule.accepts_ranked([])  # alone: the margin is the score
    assert rule.at(0.7, 0.2).accepts(rows).tolist() == [False] * 4


def test_without_a_background_logit_scores_are_not_discounted() -> None:
    scores, familiarity = torch.tensor([[0.9, 0.1]]), torch.tensor([-5.0])
    assert torch.equal(Rejection().discount(scores, familiarity), scores)
    assert float(Rejection(background=0.0).discount(scores, familiarity).sum()) < 0.01


def test_a_language_with_its_own_rule_is_decided_by_it_and_the_others_by_the_global_one() -> None:
    rule = Rejection(threshold=0.5, margin=0.0, languages={"zh": (0.8, 0.0)})
    rows = torch.tensor([[0.6, 0.1], [0.6, 0.1], [0.9, 0.1]])
    assert rule.accepts(rows, ["en", "zh", "zh"]).tolist() == [True, False, True]
    assert rule.accepts(rows).tolist() == [True, True, True]  # no language given: the global rule
    assert rule.accepts_ranked([("a", 0.6)], "en") and rule.accepts_ranked([("a", 0.6)])
    assert not rule.accepts_ranked([("a", 0.6)], "zh")
    # another operating point sets one threshold for every language unless it names their own
    assert rule.at(0.5, 0.0).languages == {} and rule.at(0.5, 0.0, {"en": (0.2, 0.1)}).point("en") == (0.2, 0.1)


def test_a_language_gets_rows_of_its_own_only_with_enough_in_scope_and_out_of_scope_rows() -> None:
    # given: English with 30 in-scope and 20 out-of-scope rows, Chinese with 30 in-scope and 19
    targets = torch.tensor([0] * 30 + [-1] * 20 + [0] * 30 + [-1] * 19)
    languages = ["en"] * 50 + ["zh"] * 49
    # when / then
    chosen = language_rows(targets, languages)
    assert list(chosen) == ["en"] and int(chosen["en"].sum()) == 50 and not chosen["en"][50:].any()
    assert (MIN_LANGUAGE_OOS, MIN_LANGUAGE_IN_SCOPE) == (20, 30)
    # among fewer rows (a fold left out), English falls short too
    assert language_rows(targets, languages, torch.arange(99) >= 1) == {}
    # one language only: its rule would be the global one
    assert language_rows(targets[:50], languages[:50]) == {}
