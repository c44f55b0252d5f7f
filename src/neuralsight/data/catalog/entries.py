"""The catalog literal: every dataset neuralsight knows, with sourced checksums and its loader facts.

Where a checksum comes from is said next to it. Values were either computed on the copies in
``shared/datasets`` / Debian's package, or read from public sources (torchvision, TFDS, MONAI and others
that pin the same upstream archives), as noted. Adding a dataset is one more ``Dataset(...)`` here.
"""

from __future__ import annotations

from neuralsight.data.catalog.prepare import COVID_HU, COVID_RAW
from neuralsight.data.catalog.sources import Dataset, Download, Layout, Tree

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MIRROR = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
# Zalando's .gz files: md5 as pinned by torchvision's FashionMNIST.resources; sha256 as pinned by several
# independent public projects for the same files (one also records 26,421,880 bytes for train-images).
FASHION_ZALANDO = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe",
                                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79",
                                  "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310",
                                  "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}
# Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 ships the same data re-compressed (gzip header
# without the file name, so each file is 23-24 bytes shorter): sha256 computed here on that package.
FASHION_DEBIAN = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
# sha256 of the decompressed idx files. Computed here from Debian's copy; their md5s (f4a8712d..., 9018921c...,
# 8181f547..., 15d48437...) equal the md5s public projects publish for Zalando's decompressed files, which
# proves the two packagings hold identical data. Any re-compression of the same data verifies by content.
FASHION_RAW = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

ROMEO_SHA256 = "edfcb9943348efafa2e90aaed046d48b3279fae28690bc6ab79d85049194654d"   # shared copy = PG repo blob
TINY_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"    # also pinned publicly
COVID_RAW_SHA256 = "485cf877a8ac4bc8f320969d076a69b537f65a7645ca0c7deb1f41b45d73af01"
COVID_HU_SHA256 = "86109513cec67728e3f5694526c97996f520c70a3ec2f50ca90cc7a0b09b3b6c"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")   # Zalando's README, label order

CATALOG: dict[str, Dataset] = {d.name: d for d in [
    Dataset(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST: 60,000 train + 10,000 test 28x28 grey images, 10 clothing classes",
        used_for="train classify",
        licence="MIT (Zalando Research, https://github.com/zalandoresearch/fashion-mnist)",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        layouts=(
            Layout("idx .gz files (Zalando or Debian)", FASHION_FILES,
                   checksums={f: (FASHION_ZALANDO[f][1], FASHION_DEBIAN[f]) for f in FASHION_FILES},
                   content_sha256={f: FASHION_RAW[f[:-3]] for f in FASHION_FILES}),
            Layout("decompressed idx files", tuple(FASHION_RAW),
                   checksums={f: (h,) for f, h in FASHION_RAW.items()}),
        ),
        downloads=tuple(Download(FASHION_URL + f, f, FASHION_ZALANDO[f][1], md5=FASHION_ZALANDO[f][0],
                                 size=26421880 if f.startswith("train-images") else None,
                                 mirrors=(FASHION_MIRROR + f,))
                        for f in FASHION_FILES),
        obtain="Debian/Ubuntu: sudo apt-get install -y dataset-fashion-mnist (installs "
               "/usr/share/datasets/fashion-mnist); or `neuralsight data fetch fashion-mnist`; or download the "
               "four .gz files from https://github.com/zalandoresearch/fashion-mnist (data/fashion/)",
        system_paths=("/usr/share/datasets/fashion-mnist",),
        system_package="dataset-fashion-mnist",
        task="classify",
        class_names=FASHION_CLASSES,
    ),
    Dataset(
        name="romeo-juliet",
        description="Shakespeare, The Tragedy of Romeo and Juliet (Project Gutenberg eBook #1513), 144,399 bytes",
        used_for="train textgen",
        licence="Public domain in the USA (Project Gutenberg: gutenbergbooks/1513 LICENSE.txt)",
        homepage="https://www.gutenberg.org/ebooks/1513",
        layouts=(Layout("text file", ("romeo_and_juliet.txt",),
                        checksums={"romeo_and_juliet.txt": (ROMEO_SHA256,)}),),
        # Project Gutenberg's own GitHub repository, pinned to the commit the shared copy was taken from
        # (its PROVENANCE.md: byte-identical, md5 c151ea07...). gutenberg.org's pg1513.txt adds a licence
        # header/footer and is a different file.
        downloads=(Download("https://raw.githubusercontent.com/gutenbergbooks/1513/"
                            "cb8f77294d76d8be9bc7953df137dd6762058f4b/1513-0.txt",
                            "romeo_and_juliet.txt", ROMEO_SHA256, md5="c151ea076f652e978d59a892df82d765",
                            size=144399),),
        obtain="`neuralsight data fetch romeo-juliet`; or save 1513-0.txt of https://github.com/gutenbergbooks/1513 "
               "as romeo_and_juliet.txt; any plain-text copy from https://www.gutenberg.org/ebooks/1513 also "
               "trains (it will not verify)",
        shared_folder="shakespeare",
        task="textgen",
        main_file="romeo_and_juliet.txt",
    ),
    Dataset(
        name="tinyshakespeare",
        description="tiny shakespeare (karpathy/char-rnn), 1,115,394 characters; nanoGPT's benchmark corpus",
        used_for="train textgen, benchmarks",
        licence="Shakespeare's text is public domain; karpathy/char-rnn states MIT for the repository",
        homepage="https://github.com/karpathy/char-rnn",
        layouts=(Layout("text file", ("tinyshakespeare.txt",),
                        checksums={"tinyshakespeare.txt": (TINY_SHA256,)}),),
        downloads=(Download("https://raw.githubusercontent.com/karpathy/char-rnn/"
                            "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                            "tinyshakespeare.txt", TINY_SHA256, md5="6fb458f1232090904fb40fe944165e91",
                            size=1115394,
                            mirrors=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                                     "tinyshakespeare/input.txt",)),),
        obtain="`neuralsight data fetch tinyshakespeare`; or save data/tinyshakespeare/input.txt of "
               "https://github.com/karpathy/char-rnn as tinyshakespeare.txt",
        shared_folder="shakespeare",
        task="textgen",
        main_file="tinyshakespeare.txt",
    ),
    Dataset(
        name="oxford-pets",
        description="Oxford-IIIT Pet: cat and dog photos with trimaps (1 pet / 2 background / 3 border)",
        used_for="train segment",
        licence="research use per the dataset README; described as CC BY-SA 4.0, image copyright with owners "
                "(Parkhi, Vedaldi, Zisserman, Jawahar, CVPR 2012)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        layouts=(
            # The official archives unpacked. 7390 images: counted by public extract checks of the archive.
            Layout("official release", ("images", "annotations/trimaps", "annotations/trainval.txt",
                                        "annotations/test.txt"),
                   tree=Tree(("images/*.jpg",), (7390,))),
            # shared/datasets/oxford-pets: the 921-pair subset (PROVENANCE.md); digest computed here.
            Layout("921-pair subset (shared/datasets)", ("images", "trimaps", "trainval.txt", "test.txt"),
                   tree=Tree(("images/*.jpg", "trimaps/*.png", "trainval.txt", "test.txt"), (921, 921, 1, 1),
                             "92c1d0a3dfd50b1bac048e6c232da0cbcafa91402093ed04934224c0ea11f410")),
        ),
        # sha256 + size from TFDS's checksums.tsv; md5 from torchvision's OxfordIIITPet._RESOURCES; a third
        # public record ties md5 5c4f3ee8... to sha256 67195c5e... and 791,918,971 bytes.
        downloads=(
            Download("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", "images.tar.gz",
                     "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d", unpack=True,
                     md5="5c4f3ee8e5d25df40f4fd59a7f44e54c", size=791918971,
                     mirrors=("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",)),
            Download("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", "annotations.tar.gz",
                     "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91", unpack=True,
                     md5="95a8c909bbe2e81eed6a22bccdf3f68f", size=19173078,
                     mirrors=("https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",)),
        ),
        obtain="`neuralsight data fetch oxford-pets` (about 810 MB); or download images.tar.gz and "
               "annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ and extract both into one folder",
        task="segment",
        class_names=("background", "pet", "border"),      # trimap values 2, 1, 3 (images.read_mask)
        mask_format="trimap",
        split_unit="image",
        headline_metric="fg_iou",
        merge_foreground=True,
    ),
    Dataset(
        name="liver-ct-2d",
        description="643 liver CT slices (256x256 JPEG) with binary liver masks (PNG), MSD Task03/LiTS-derived",
        used_for="train segment --dataset liver-ct-2d",
        licence="as stated by the source: Open Data Commons DbCL 1.0 (Kaggle '3D Liver segmentation'); "
                "MSD data CC BY-SA 4.0",
        homepage="https://github.com/sarah-antillia/Image-Segmentation-Liver-Tumor",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.jpg", "masks/*.png"), (643, 643),
                                  "6ef627baf715e5db4d58d857a5fa7e5d649ab496973f68b49ba7b013fb5052b5")),),
        obtain="no direct download: copy projects/Liver-Tumor/Liver-Tumor/test/{images,masks} of "
               "https://github.com/sarah-antillia/Image-Segmentation-Liver-Tumor (commit de32e744) and convert the "
               "JPEG masks to binary PNG (value > 127 -> 255), see shared/datasets/liver-ct-2d/PROVENANCE.md",
        task="segment",
        class_names=("background", "liver"),
        mask_format="binary",
        # flipped_10001_103 / mirrored_10001_103: the copies of one slice share the volume number
        group_pattern=r"^[A-Za-z]+_(\d+)_",
        split_unit="volume",
        headline_metric="fg_dice",
    ),
    Dataset(
        name="dental-teeth-2d",
        description="1752 intraoral photos (584 photos x 3 augmentations, 448x448) with binary tooth masks",
        used_for="train segment --dataset dental-teeth-2d",
        licence="no data licence stated by the source (Roboflow Universe 'Tooth Detection' export; "
                "repository code GPL-3.0); research/teaching use",
        homepage="https://github.com/zhangfaen/unet-for-tooth-segmentation",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.jpg", "masks/*.png"), (1752, 1752),
                                  "6c5bdef1500060483aa201fd56fb8d444bf647286fd5b52ed5807fde48478636")),),
        obtain="no direct download: copy data/imgs and data/masks of "
               "https://github.com/zhangfaen/unet-for-tooth-segmentation (commit 836be4ed) to images/ and masks/ "
               "and drop the masks' `_mask` suffix; source: universe.roboflow.com/minkyu/tooth-detection-myvcg",
        task="segment",
        class_names=("background", "tooth"),
        mask_format="binary",
        group_pattern=r"^(.*?)\.rf\.",       # <photo>.rf.<hash>: Roboflow's three augmentations of one photo
        split_unit="photo",
        headline_metric="fg_dice",
    ),
    Dataset(
        name="kits19-kidney-2d-mini",
        description="24 KiTS19 kidney CT slices (512x512) with colour masks (blue kidney, red tumour)",
        used_for="train segment --dataset kits19-kidney-2d-mini",
        licence="no data licence found in the sources; kits19 repository code MIT (excluding data/); "
                "check the KiTS19 data terms before redistribution",
        homepage="https://kits19.grand-challenge.org",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.png", "masks/*.png"), (24, 24),
                                  "6a833c6cdaa14b20a2963a104edd08992365ddfcf137c7948a83864dc6f67ef9")),),
        obtain="no direct download: copy projects/TensorFlowFlexUNet/Kidney-Tumor/mini_test/{images,masks} of "
               "https://github.com/sarah-antillia/TensorFlow-FlexUNet-Image-Segmentation-KiTS19-Kidney-Tumor "
               "(commit 07dfb454)",
        task="segment",
        class_names=("background", "kidney", "tumour"),
        palette=((0, 0, 0), (0, 0, 255), (255, 0, 0)),
        mask_format="palette",
        group_pattern=r"^(\d+)_",             # <case>_<slice>
        split_unit="case",
        headline_metric="miou",
    ),
    Dataset(
        name="dental-xray",
        description="50 panoramic dental radiographs (1024 px wide, grey) with binary tooth masks (crowns and "
                    "roots); two radiographs show no teeth, so their masks are empty",
        used_for="train segment --dataset dental-xray",
        licence="no licence stated by the source repositories (tooth masks: a GPL-3.0 repository); a third "
                "party states CC BY-NC 3.0 for the radiographs (Abdi et al., Mendeley Data hxt48yk462); "
                "non-commercial research/teaching use with attribution",
        homepage="https://data.mendeley.com/datasets/hxt48yk462/1",
        # shared/datasets/dental-xray: pairs 1..50 of 116, resized to 1024 px wide (PROVENANCE.md); digest
        # computed here and equal to the one its SHA256SUMS lines give.
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.png", "masks/*.png"), (50, 50),
                                  "518e91e9c00ee3ca0df06da7712ff09c2af905baa191df047f278099d2dbc9a7")),),
        obtain="no direct download: take data/original/{1..50}.png of https://github.com/razvan404/"
               "dental-data-segmentation (commit d77f3a17) as images/ and the same stems from "
               "Original_Masks/Orig_Masks.zip of https://github.com/SerdarHelli/"
               "Segmentation-of-Teeth-in-Panoramic-X-ray-Image-Using-U-Net (commit 5e654dcf) as masks/, resized "
               "to 1024 px wide and binarised (mask > 0), see shared/datasets/dental-xray/PROVENANCE.md",
        task="segment",
        class_names=("background", "tooth"),
        mask_format="binary",                 # 5.png and 17.png are all zero: valid, empty targets
        group_pattern=r"^(\d+)",              # one radiograph per stem
        split_unit="radiograph",
        headline_metric="fg_dice",
    ),
    Dataset(
        name="msd-hippocampus",
        description="Medical Segmentation Decathlon Task04_Hippocampus: 260 cropped MRI volumes, "
                    "labels 1/2 anterior/posterior",
        used_for="train segment3d",
        licence="CC BY-SA 4.0 (Medical Segmentation Decathlon; cite Simpson et al. 2019, arXiv:1902.09063)",
        homepage="http://medicaldecathlon.com/",
        layouts=(
            # The official archive unpacked: 260 training pairs (+130 unlabelled imagesTs, dataset.json).
            Layout("official Task04 archive", ("imagesTr", "labelsTr", "dataset.json"),
                   tree=Tree(("imagesTr/*.nii.gz", "labelsTr/*.nii.gz"), (260, 260))),
            # shared/datasets/msd-hippocampus: 260 pairs from a Udacity copy (not the same 260; PROVENANCE.md).
            Layout("260-pair copy (shared/datasets)", ("imagesTr", "labelsTr"),
                   tree=Tree(("imagesTr/*.nii.gz", "labelsTr/*.nii.gz"), (260, 260),
                             "4e9455ae15680a302806ff3db4470450a45a6fb897bc0052a19835224b153a24")),
        ),
        # MONAI's DecathlonDataset URL and md5; sha256 and 28,425,216 bytes as recorded by several public
        # projects that pin the same archive (and cited in shared/datasets/msd-hippocampus/PROVENANCE.md).
        downloads=(Download("https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
                            "Task04_Hippocampus.tar",
                            "282d808a3e84e5a52f090d9dd4c0b0057b94a6bd51ad41569aef5ff303287771", unpack=True,
                            md5="9d24dba78a72977dbd1d2e110310f31b", size=28425216, strip="Task04_Hippocampus"),),
        obtain="`neuralsight data fetch msd-hippocampus` (28 MB); or download Task04_Hippocampus.tar via "
               "http://medicaldecathlon.com/ and extract it (imagesTr/, labelsTr/)",
        task="segment3d",
        # dataset.json of Task04 says "Anterior"/"Posterior"; the 260-pair copy has no dataset.json
        class_names=("background", "anterior", "posterior"),
        split_unit="case",
        headline_metric="dice",              # mean foreground Dice over the cases
    ),
    Dataset(
        name="covid-hu",
        description="daily confirmed COVID-19 cases in Hungary, 2020-01-22..2023-03-09 (JHU CSSE), 1143 days",
        used_for="train forecast",
        licence="CC BY 4.0 (COVID-19 Data Repository by CSSE at Johns Hopkins University)",
        homepage="https://github.com/CSSEGISandData/COVID-19",
        layouts=(Layout("derived CSV", (COVID_HU,),
                        checksums={COVID_HU: (COVID_HU_SHA256,), COVID_RAW: (COVID_RAW_SHA256,)}),),
        # The shared raw table is byte-identical to this pinned blob (PROVENANCE.md); the Hungary CSV is
        # derived from it by `derive_hungary` (a test checks the result equals the shared file byte for byte).
        downloads=(Download("https://raw.githubusercontent.com/Al-AminLAB/Health_Datasets/"
                            "471948d242ebe57db570dc328494fea734460f19/time_series_covid19_confirmed_global.csv",
                            COVID_RAW, COVID_RAW_SHA256, size=1822442),),
        prepare="covid-hu",
        obtain="`neuralsight data fetch covid-hu`; or take the Hungary row of "
               "csse_covid_19_data/csse_covid_19_time_series/time_series_covid19_confirmed_global.csv from "
               "https://github.com/CSSEGISandData/COVID-19 and difference it (date,new_cases,cumulative)",
        task="forecast",
        main_file=COVID_HU,
    ),
]}

