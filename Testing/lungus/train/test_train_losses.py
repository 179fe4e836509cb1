import torch

from lungus.train.losses import ClipLoss, DiceCELoss, balanced_class_weights, sord_targets


def test_sord_targets_peak_at_the_true_grade_and_decay_with_distance():
    targets = sord_targets(torch.tensor([0, 2]), 4)
    assert torch.allclose(targets.sum(1), torch.ones(2))
    assert targets[1].argmax() == 2
    assert targets[1, 1] > targets[1, 0]
    assert targets[1, 1] == targets[1, 3]


def test_ordinal_loss_punishes_far_mistakes_more():
    loss = ClipLoss(ordinal=True)
    target = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    near = torch.tensor([[0.0, 0.0, 5.0, 0.0]])
    far = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    assert loss(near, target) < loss(far, target)


def test_soft_targets_are_matched_by_their_distribution():
    loss = ClipLoss()
    target = torch.tensor([[0.25, 0.75]])
    matching = torch.log(target)
    confident = torch.tensor([[0.0, 10.0]])
    assert loss(matching, target) < loss(confident, target)


def test_balanced_weights_upweight_the_rare_class():
    weights = balanced_class_weights(torch.tensor([[1.0, 0.0]] * 9 + [[0.0, 1.0]]))
    assert torch.allclose(weights, torch.tensor([10 / 18, 10 / 2]))


def test_dice_ce_is_lower_for_the_right_mask():
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :, 3] = 3
    right = torch.full((1, 6, 8, 8), -5.0)
    right[0, 0] = 5.0
    right[0, 0, :, 3] = -5.0
    right[0, 3, :, 3] = 5.0
    wrong = torch.full((1, 6, 8, 8), -5.0)
    wrong[0, 0] = 5.0
    loss = DiceCELoss(6)
    assert loss(right, masks) < 0.1 < loss(wrong, masks)
