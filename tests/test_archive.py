"""Choosing final sets from the archive: per scope, and jointly under hybrid fairness."""

from distributed_recourse.recourse.archive import best_combination, best_entry


def entry(sr, pd, flipped_any, people=(10, 10), effective=(1, 1), gower=0.1, chosen=0.1,
          gap=0.0):
    tally = {"people": list(people), "flipped_any": list(flipped_any),
             "flipped_best": list(flipped_any), "effective": list(effective), "n_actions": 2}
    return {"SR": sr, "PD": pd, "ECR_gap": gap, "gower_active": gower, "chosen_cost": chosen,
            "tally": tally, "set": [[sr, pd]]}


def test_hybrid_sets_are_chosen_for_the_population_not_each_scope():
    # scope a's own best (SR 1.0) leaves group 1 behind population-wide: with b's set
    # flipping (5, 9), a_best gives (15, 19)/20 -> PD 0.2; a_fair gives (14, 14)/20 -> PD 0.
    a_best = entry(1.0, 0.0, (10, 10))
    a_fair = entry(0.9, 0.05, (9, 5))
    b = entry(0.7, 0.1, (5, 9))
    assert best_entry([a_best, a_fair]) is a_best
    chosen = best_combination({"a": [a_best, a_fair], "b": [b]}, "micro")
    assert chosen["a"] is a_fair and chosen["b"] is b
    # population SR - PD: a_best 0.85 - 0.2 = 0.65 < a_fair 0.7 - 0.0 = 0.7


def test_a_scope_without_archive_keeps_the_per_scope_choice():
    a = entry(1.0, 0.0, (10, 10))
    assert best_combination({"a": [a], "b": []}, "micro") == {"a": a, "b": None}


def test_ties_go_to_the_cheapest_chosen_counterfactuals_not_the_nearest_actions():
    # equal SR - PD: the set whose actions are nearer on average (gower_active) hands people
    # farther counterfactuals (chosen_cost, what they get and the summary reports)
    near_actions = entry(1.0, 0.0, (10, 10), gower=0.05, chosen=0.30)
    near_people = entry(1.0, 0.0, (10, 10), gower=0.20, chosen=0.10)
    assert best_entry([near_actions, near_people]) is near_people
    # jointly, the cost is over everyone flipped: b flips 18 people at 0.5, so a's choice
    # between 0.1 and 0.3 over its 20 moves the population by 20 x 0.2 / 38
    b = entry(1.0, 0.0, (9, 9), chosen=0.5)
    chosen = best_combination({"a": [near_actions, near_people], "b": [b]}, "micro")
    assert chosen["a"] is near_people


def test_ties_go_to_the_smaller_ecr_gap_before_the_cheaper_counterfactuals():
    # equal SR - PD: equal choice between groups first (as the hybrid joint choice), then cost
    cheap_unequal = entry(1.0, 0.0, (10, 10), chosen=0.10, gap=0.25)
    dear_equal = entry(1.0, 0.0, (10, 10), chosen=0.12, gap=0.0)
    assert best_entry([cheap_unequal, dear_equal]) is dear_equal
    # a higher SR - PD still comes first
    better = entry(1.0, 0.0, (10, 10), chosen=0.3, gap=0.5)
    assert best_entry([entry(0.9, 0.0, (9, 9)), better]) is better


def test_two_scopes_change_together_where_one_at_a_time_widens_the_gap():
    # everyone flipped everywhere (SR 1, PD 0). Each scope's own best is its equal-choice set
    # (effective (1, 1), chosen cost 0.5). a_cheap (effective (2, 1)) or b_cheap ((1, 2)) alone
    # opens a population gap: (3, 2) / 4 -> 0.25; together they are (3, 3) / 4 -> no gap, and
    # every chosen counterfactual costs 0.1
    a_equal = entry(1.0, 0.0, (10, 10), effective=(1, 1), chosen=0.5)
    a_cheap = entry(1.0, 0.0, (10, 10), effective=(2, 1), chosen=0.1, gap=0.5)
    b_equal = entry(1.0, 0.0, (10, 10), effective=(1, 1), chosen=0.5)
    b_cheap = entry(1.0, 0.0, (10, 10), effective=(1, 2), chosen=0.1, gap=0.5)
    assert best_entry([a_equal, a_cheap]) is a_equal
    chosen = best_combination({"a": [a_equal, a_cheap], "b": [b_equal, b_cheap]}, "micro")
    assert chosen["a"] is a_cheap and chosen["b"] is b_cheap
    # one scope at a time would have stayed where it started
    alone = best_combination({"a": [a_equal, a_cheap], "b": [b_equal, b_cheap]}, "micro",
                             shortlist=1)
    assert alone["a"] is a_equal and alone["b"] is b_equal
