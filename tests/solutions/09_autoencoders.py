"""09_autoencoders: alternative correct answers (full marks) and plausible mistakes (lose points).

``train_autoencoder`` is the training cell (no syllabus name: its answer cell's grade_id).
Its mutants are cheap: no training, no bottleneck, the held-out images, one epoch.
"""

ALTERNATIVES = {
    "ConvAutoencoder": '''
class ConvAutoencoder(nn.Module):
    """Pooling in the encoder; kernel-2 transposed convolutions in the decoder; functional
    activations and sigmoid."""

    def __init__(self, latent_dim=32):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.to_code = nn.Linear(16 * 7 * 7, latent_dim)
        self.from_code = nn.Linear(latent_dim, 16 * 7 * 7)
        self.up1 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.up2 = nn.ConvTranspose2d(8, 1, 2, stride=2)

    def encode(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.to_code(h.flatten(start_dim=1))

    def decode(self, z):
        h = F.relu(self.from_code(z)).view(-1, 16, 7, 7)
        return torch.sigmoid(self.up2(F.relu(self.up1(h))))

    def forward(self, x):
        z = self.encode(x)
        return self.decode(z)
''',
    "train_autoencoder": '''
# Mean squared error as the loss, smaller batches, no progress bar.
torch.manual_seed(1)
autoencoder = ConvAutoencoder()
optimizer = torch.optim.Adam(autoencoder.parameters(), lr=3e-3)
images = train_x[:6000]
autoencoder.train()
for epoch in range(4):
    for batch in images[torch.randperm(len(images))].split(32):
        loss = F.mse_loss(autoencoder(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
''',
}

MUTANTS = {
    "ConvAutoencoder": [
        '''
class ConvAutoencoder(nn.Module):  # no sigmoid: the decoder's values are not limited to [0, 1]
    def __init__(self, latent_dim=32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(32 * 7 * 7, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                     nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
''',
        '''
class ConvAutoencoder(nn.Module):  # latent_dim is ignored: the code always has 32 numbers
    def __init__(self, latent_dim=32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(32 * 7 * 7, 32))
        self.decoder = nn.Sequential(nn.Linear(32, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                     nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
''',
        '''
class ConvAutoencoder(nn.Module):  # a dense autoencoder: no convolution anywhere
    def __init__(self, latent_dim=32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid(),
                                     nn.Unflatten(1, (1, 28, 28)))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
''',
        '''
class ConvAutoencoder(nn.Module):  # a skip connection around the bottleneck: forward is not decode(encode(x))
    def __init__(self, latent_dim=32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(32 * 7 * 7, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                     nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return 0.5 * self.decode(self.encode(x)) + 0.5 * x
''',
    ],
    "train_autoencoder": [
        '''
# builds the autoencoder and forgets to train it
torch.manual_seed(0)
autoencoder = ConvAutoencoder(latent_dim=32)
''',
        '''
# "a perfect autoencoder": the code is the image itself (784 numbers, no bottleneck)
class Flatten784(nn.Module):
    def encode(self, x):
        return x.flatten(start_dim=1)

    def decode(self, z):
        return z.view(-1, 1, 28, 28)

    def forward(self, x):
        return self.decode(self.encode(x))


autoencoder = Flatten784()
''',
        '''
# "more data is better": trains on the held-out images too
heldout_x, _ = load_mnist("heldout")
images = torch.cat([train_x[:3000], heldout_x])
torch.manual_seed(0)
autoencoder = ConvAutoencoder(latent_dim=32)
optimizer = torch.optim.Adam(autoencoder.parameters(), lr=3e-3)
for batch in images[torch.randperm(len(images))].split(64):
    loss = F.binary_cross_entropy(autoencoder(batch), batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
''',
        '''
# too little training: 40 steps, stuck on the plateau of the blurry mean digit
torch.manual_seed(0)
autoencoder = ConvAutoencoder(latent_dim=32)
optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
for start in range(0, 40 * 64, 64):
    batch = train_x[start:start + 64]
    loss = F.mse_loss(autoencoder(batch), batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
''',
    ],
}
