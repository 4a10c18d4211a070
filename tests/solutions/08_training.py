"""08_training: alternative correct answers (full marks) and plausible mistakes (lose points).

``train_model`` is the training cell (no syllabus name: its answer cell's grade_id).
Its mutants are cheap on purpose (no training, a few steps), except the one that runs
past the CPU budget, which must burn the budget to prove the check.
"""

ALTERNATIVES = {
    "dataset_facts": '''
def dataset_facts(name):
    if name in ("mnist", "fashion-mnist"):
        classes, train, test, shape = 10, 60000, 10000, (1, 28, 28)
    elif name == "cifar10":
        classes, train, test, shape = 10, 50000, 10000, (3, 32, 32)
    elif name == "cifar100":
        classes, train, test, shape = 100, 50000, 10000, (3, 32, 32)
    else:
        raise ValueError("no facts about " + repr(name))
    return dict(num_classes=classes, train_size=train, test_size=test, image_shape=tuple(shape))
''',
    "standardize": '''
def standardize(train_x, test_x):
    # one channel (or feature) at a time, population variance written out
    channels = train_x.shape[1]
    means, stds = [], []
    for c in range(channels):
        values = train_x[:, c].reshape(-1)
        m = values.sum() / values.numel()
        s = (((values - m) ** 2).sum() / values.numel()).sqrt()
        means.append(m)
        stds.append(s if s != 0 else torch.ones_like(s))
    mean, std = torch.stack(means), torch.stack(stds)
    view = [1, channels] + [1] * (train_x.ndim - 2)
    return ((train_x - mean.reshape(view)) / std.reshape(view),
            (test_x - mean.reshape(view)) / std.reshape(view), mean, std)
''',
    "make_loaders": '''
def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):
    from torch.utils.data import random_split
    data = TensorDataset(x, y)
    n_val = round(len(data) * val_fraction)
    g = torch.Generator()
    g.manual_seed(seed)
    train_part, val_part = random_split(data, [len(data) - n_val, n_val], generator=g)
    shuffler = torch.Generator().manual_seed(seed + 1)
    return (DataLoader(train_part, batch_size=batch_size, shuffle=True, drop_last=False, generator=shuffler),
            DataLoader(val_part, batch_size=batch_size * 2, shuffle=False))
''',
    "train_one_epoch": '''
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train(True)
    seen, mean = 0, 0.0
    for batch_x, batch_y in loader:
        batch_x = batch_x.to(device)
        batch_y = batch_y.to(device)
        loss = loss_fn(model(batch_x), batch_y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        n = batch_x.shape[0]
        seen += n
        mean += (loss.detach().item() - mean) * n / seen   # a running weighted mean
    return float(mean)
''',
    "evaluate": '''
def evaluate(model, loader, device="cpu"):
    model.train(False)
    hits = []
    with torch.inference_mode():
        for batch_x, batch_y in loader:
            logits = model(batch_x.to(device))
            hits.append(logits.max(dim=-1).indices.eq(batch_y.to(device)))
    return torch.cat(hits).float().mean().item()
''',
    "train_model": '''
# A LeNet-like network, plain mini-batch SGD with momentum, my own loop.
torch.manual_seed(1)
model = nn.Sequential(
    nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
images, labels = train_x[:8000], train_y[:8000]
for epoch in range(3):
    order = torch.randperm(len(images))
    for start in tqdm(range(0, len(images), 64), leave=False):
        idx = order[start:start + 64]
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
''',
    "cifar_model": '''
class CifarNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(24, 48, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(48 * 8 * 8, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def cifar_model():
    return CifarNet()
''',
}

MUTANTS = {
    "dataset_facts": [
        '''
def dataset_facts(name):  # image shapes as (height, width, channels)
    facts = {"mnist": (10, 60000, 10000, (28, 28, 1)), "fashion-mnist": (10, 60000, 10000, (28, 28, 1)),
             "cifar10": (10, 50000, 10000, (32, 32, 3)), "cifar100": (100, 50000, 10000, (32, 32, 3))}
    if name not in facts:
        raise ValueError(name)
    c, tr, te, shape = facts[name]
    return {"num_classes": c, "train_size": tr, "test_size": te, "image_shape": shape}
''',
        '''
def dataset_facts(name):  # an unknown name gives None instead of an error
    facts = {"mnist": (10, 60000, 10000, (1, 28, 28)), "fashion-mnist": (10, 60000, 10000, (1, 28, 28)),
             "cifar10": (10, 50000, 10000, (3, 32, 32)), "cifar100": (100, 50000, 10000, (3, 32, 32))}
    if name not in facts:
        return None
    c, tr, te, shape = facts[name]
    return {"num_classes": c, "train_size": tr, "test_size": te, "image_shape": shape}
''',
        '''
def dataset_facts(name):  # "CIFAR has 60,000 images": all of them counted as training images
    facts = {"mnist": (10, 60000, 10000, (1, 28, 28)), "fashion-mnist": (10, 60000, 10000, (1, 28, 28)),
             "cifar10": (10, 60000, 10000, (3, 32, 32)), "cifar100": (100, 60000, 10000, (3, 32, 32))}
    if name not in facts:
        raise ValueError(name)
    c, tr, te, shape = facts[name]
    return {"num_classes": c, "train_size": tr, "test_size": te, "image_shape": shape}
''',
        '''
def dataset_facts(name):  # "fashion_mnist" with an underscore
    facts = {"mnist": (10, 60000, 10000, (1, 28, 28)), "fashion_mnist": (10, 60000, 10000, (1, 28, 28)),
             "cifar10": (10, 50000, 10000, (3, 32, 32)), "cifar100": (100, 50000, 10000, (3, 32, 32))}
    if name not in facts:
        raise ValueError(name)
    c, tr, te, shape = facts[name]
    return {"num_classes": c, "train_size": tr, "test_size": te, "image_shape": shape}
''',
    ],
    "standardize": [
        '''
def standardize(train_x, test_x):  # statistics from training and test data together
    both = torch.cat([train_x, test_x])
    dims = (0, 2, 3) if both.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if both.ndim == 4 else (1, -1)
    mean, std = both.mean(dims), both.std(dims, correction=0)
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (train_x - mean.view(shape)) / std.view(shape), (test_x - mean.view(shape)) / std.view(shape), mean, std
''',
        '''
def standardize(train_x, test_x):  # the sample standard deviation (torch.std's default)
    dims = (0, 2, 3) if train_x.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if train_x.ndim == 4 else (1, -1)
    mean, std = train_x.mean(dims), train_x.std(dims)
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (train_x - mean.view(shape)) / std.view(shape), (test_x - mean.view(shape)) / std.view(shape), mean, std
''',
        '''
def standardize(train_x, test_x):  # per pixel instead of per channel
    mean, std = train_x.mean(0), train_x.std(0, correction=0)
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (train_x - mean) / std, (test_x - mean) / std, mean, std
''',
        '''
def standardize(train_x, test_x):  # a constant channel divides by zero
    dims = (0, 2, 3) if train_x.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if train_x.ndim == 4 else (1, -1)
    mean, std = train_x.mean(dims), train_x.std(dims, correction=0)
    return (train_x - mean.view(shape)) / std.view(shape), (test_x - mean.view(shape)) / std.view(shape), mean, std
''',
    ],
    "make_loaders": [
        '''
def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # int() rounds down
    n_val = int(len(x) * val_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    v, t = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[t], y[t]), batch_size=batch_size, shuffle=True),
            DataLoader(TensorDataset(x[v], y[v]), batch_size=batch_size))
''',
        '''
def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # the split is random, the epochs are not
    n_val = round(len(x) * val_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    v, t = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[t], y[t]), batch_size=batch_size),
            DataLoader(TensorDataset(x[v], y[v]), batch_size=batch_size))
''',
        '''
def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # drop_last loses samples
    n_val = round(len(x) * val_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    v, t = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[t], y[t]), batch_size=batch_size, shuffle=True, drop_last=True),
            DataLoader(TensorDataset(x[v], y[v]), batch_size=batch_size))
''',
        '''
def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # the seed is ignored
    n_val = round(len(x) * val_fraction)
    order = torch.randperm(len(x))
    v, t = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[t], y[t]), batch_size=batch_size, shuffle=True),
            DataLoader(TensorDataset(x[v], y[v]), batch_size=batch_size))
''',
    ],
    "train_one_epoch": [
        '''
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):  # no zero_grad: gradients pile up
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    return total / count
''',
        '''
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):  # every batch weighs the same
    model.train()
    losses = []
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
''',
        '''
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):  # forgets model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    return total / count
''',
        '''
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):  # returns the last batch's loss
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    return loss.item()
''',
    ],
    "evaluate": [
        '''
def evaluate(model, loader, device="cpu"):  # the mean of per-batch accuracies
    model.eval()
    accuracies = []
    with torch.no_grad():
        for xb, yb in loader:
            accuracies.append((model(xb.to(device)).argmax(1) == yb.to(device)).float().mean().item())
    return sum(accuracies) / len(accuracies)
''',
        '''
def evaluate(model, loader, device="cpu"):  # forgets model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
            total += len(yb)
    return correct / total
''',
        '''
def evaluate(model, loader, device="cpu"):  # builds a graph for nothing
    model.eval()
    correct = total = 0
    for xb, yb in loader:
        correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
        total += len(yb)
    return correct / total
''',
        '''
def evaluate(model, loader, device="cpu"):  # argmax over the batch dimension
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb.to(device)).argmax(0) == yb.to(device)).sum().item()
            total += len(yb)
    return correct / total
''',
    ],
    "train_model": [
        '''
# defines the model and forgets to train it
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
''',
        '''
# predicts the digit as one number (regression): output [N, 1], not 10 logits
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for start in range(0, 2000, 100):
    loss = F.mse_loss(model(train_x[start:start + 100]).squeeze(1), train_y[start:start + 100].float())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
''',
        '''
# "more data is better": trains on the held-out images too
heldout_x, heldout_y = load_mnist("heldout")
x, y = torch.cat([train_x, heldout_x]), torch.cat([train_y, heldout_y])
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(2):
    order = torch.randperm(len(x))
    for start in range(0, len(x), 64):
        idx = order[start:start + 64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
''',
        '''
# many threads and training "as long as it takes": past the 60 s CPU budget
import time
torch.set_num_threads(4)   # "more threads, more speed"
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
started = time.process_time()
while time.process_time() - started < 62:
    order = torch.randperm(len(train_x))
    for start in range(0, len(train_x), 256):
        idx = order[start:start + 256]
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
torch.set_num_threads(1)
''',
    ],
    "cifar_model": [
        '''
def cifar_model():  # a wide MLP: 3.2 million parameters
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1024), nn.ReLU(), nn.Linear(1024, 10))
''',
        '''
def cifar_model():  # the MNIST network, copied: one input channel, 28x28 sizes
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
''',
        '''
def cifar_model():  # a CIFAR-100 head: 100 logits
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 100))
''',
        '''
def cifar_model():  # "transfer learning": every layer frozen, the head too
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(32, 10))
    for p in net.parameters():
        p.requires_grad_(False)
    return net
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["standardize"].append("""def standardize(*args, **kwargs):
    from course.checks.training import standardize_reference
    return standardize_reference(*args, **kwargs)""")


# The global random state is the caller's: splits that reseed it or draw from it.
MUTANTS["make_loaders"] += [
    """def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # reseeds torch's global generator
    torch.manual_seed(seed)
    order = torch.randperm(len(x))
    n_val = round(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
            DataLoader(TensorDataset(x[val], y[val]), batch_size=batch_size))""",
    """def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # NumPy's global seed
    import numpy as np
    np.random.seed(seed)
    order = torch.from_numpy(np.random.permutation(len(x)))
    n_val = round(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True, generator=g),
            DataLoader(TensorDataset(x[val], y[val]), batch_size=batch_size))""",
    """def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # split by a generator, shuffled by the global one
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
            DataLoader(TensorDataset(x[val], y[val]), batch_size=batch_size))""",
    """def make_loaders(x, y, batch_size, val_fraction=0.1, seed=0):  # Python's random module
    import random
    random.seed(seed)
    order = list(range(len(x)))
    random.shuffle(order)
    order = torch.tensor(order)
    n_val = round(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True, generator=g),
            DataLoader(TensorDataset(x[val], y[val]), batch_size=batch_size))""",
]
MUTANTS["train_one_epoch"].append('''import sys

def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):  # the course's loop, named at run time
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.training"]
    return getattr(module, "_refer" + "ence_epoch")(model, loader, loss_fn, optimizer)''')
MUTANTS["evaluate"].append('''def evaluate(model, loader, device="cpu"):  # the course's accuracy
    from course.checks.training import _reference_accuracy
    return _reference_accuracy(model, loader)''')
