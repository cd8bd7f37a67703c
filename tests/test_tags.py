"""Tags and cover art carried from input to output (apollo_cli.tags), on real tagged files.

The tests tag files with mutagen (ID3 on an MP3 made by libsndfile, Vorbis comments on
FLAC and Ogg, MP4 atoms on an M4A made by ffmpeg) and with ffmpeg (Matroska tags and
attachments), restore them with the tiny model and
read the outputs' tags and picture bytes back.
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from mutagen import id3
from mutagen.flac import FLAC
from mutagen.flac import Picture as FlacPicture
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from typer.testing import CliRunner

import apollo_cli
from apollo_cli import tags
from apollo_cli.cli import app
from helpers import TINY_MODEL, make_music

FFMPEG = shutil.which("ffmpeg")


def png(width: int = 3, height: int = 2) -> bytes:
    """A real, tiny RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([40, 80, 120]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


COVER = png()
BACK = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # JPEG-looking bytes: carried as they are

#: What every tagged test file holds, in apollo_cli.tags' canonical form.
EXPECTED = {
    "title": ["Tïtle ☂"],
    "artist": ["Artist One", "Artist Two"],
    "album": ["The Album"],
    "albumartist": ["Various"],
    "tracknumber": ["3"],
    "tracktotal": ["12"],
    "discnumber": ["1"],
    "disctotal": ["2"],
    "date": ["1999-05-01"],
    "genre": ["Rock"],
    "comment": ["a comment"],
}


#: What restoring each kind of tagged test file says about the tags it does not carry:
#: the ReplayGain (and iTunes' Sound Check) figures of the lossy audio, by name.
RECOMPUTE = "(loudness of the lossy audio; recompute ReplayGain for the restored file)"
NOTES = {
    "mp3": [f"not carried: COMM:iTunNORM, TXXX:REPLAYGAIN_TRACK_GAIN {RECOMPUTE}"],
    "flac": [f"not carried: REPLAYGAIN_TRACK_GAIN {RECOMPUTE}"],
    "ogg": [f"not carried: REPLAYGAIN_TRACK_GAIN {RECOMPUTE}"],
    "m4a": [],  # ffmpeg's encoder tag (\xa9too) is dropped without a word
    "mka": [f"not carried: REPLAYGAIN_TRACK_GAIN {RECOMPUTE}"],
}


def expected_fields(kind: str) -> dict[str, list[str]]:
    """EXPECTED as a file of ``kind`` can hold it: ffmpeg writes one value per Matroska tag."""
    if kind == "mka":
        return {**EXPECTED, "artist": ["Artist One, Artist Two"]}
    return EXPECTED


def expected_pictures(kind: str) -> list[tuple[int, str, str, bytes]]:
    """The pictures read back from a tagged file of ``kind``."""
    if kind == "m4a":  # MP4 covers carry neither a type nor a description
        return sorted([(3, "image/png", "", COVER), (3, "image/jpeg", "", BACK)])
    if kind == "mka":  # Matroska attachments have file names: cover.png is the front cover
        return sorted([(3, "image/png", "", COVER), (0, "image/jpeg", "", BACK)])
    return EXPECTED_PICTURES


def tag_mp3(path: Path) -> None:
    audio = MP3(path)
    audio.add_tags()
    t = audio.tags
    t.add(id3.TIT2(encoding=3, text=EXPECTED["title"]))
    t.add(id3.TPE1(encoding=3, text=EXPECTED["artist"]))
    t.add(id3.TALB(encoding=3, text=EXPECTED["album"]))
    t.add(id3.TPE2(encoding=3, text=EXPECTED["albumartist"]))
    t.add(id3.TRCK(encoding=3, text="3/12"))
    t.add(id3.TPOS(encoding=3, text="1/2"))
    t.add(id3.TDRC(encoding=3, text="1999-05-01"))
    t.add(id3.TCON(encoding=3, text="(17)"))  # ID3v1 genre 17: Rock
    t.add(id3.COMM(encoding=3, lang="eng", desc="", text="a comment"))
    t.add(id3.COMM(encoding=3, lang="eng", desc="iTunNORM", text=" 0000 0000"))  # machine data: not carried
    t.add(id3.TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text="-6.5 dB"))  # describes the old audio
    t.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="front", data=COVER))
    t.add(id3.APIC(encoding=3, mime="jpg", type=4, desc="back", data=BACK))
    audio.save()


def vorbis_fields() -> dict[str, list[str]]:
    return {
        "TITLE": EXPECTED["title"], "ARTIST": EXPECTED["artist"], "ALBUM": EXPECTED["album"],
        "ALBUMARTIST": EXPECTED["albumartist"], "TRACKNUMBER": ["3"], "TRACKTOTAL": ["12"],
        "DISCNUMBER": ["1/2"], "DATE": ["1999-05-01"], "GENRE": ["Rock"], "COMMENT": ["a comment"],
        "REPLAYGAIN_TRACK_GAIN": ["-6.5 dB"],
    }  # fmt: skip


def flac_picture(data: bytes, mime: str, kind: int, desc: str) -> FlacPicture:
    picture = FlacPicture()
    picture.data, picture.mime, picture.type, picture.desc = data, mime, kind, desc
    return picture


def tag_flac(path: Path) -> None:
    audio = FLAC(path)
    for key, values in vorbis_fields().items():
        audio[key] = values
    audio.add_picture(flac_picture(COVER, "image/png", 3, "front"))
    audio.add_picture(flac_picture(BACK, "image/jpeg", 4, "back"))
    audio.save()


def tag_ogg(path: Path) -> None:
    audio = OggVorbis(path)
    for key, values in vorbis_fields().items():
        audio[key] = values
    audio["METADATA_BLOCK_PICTURE"] = [
        base64.b64encode(flac_picture(COVER, "image/png", 3, "front").write()).decode("ascii"),
        base64.b64encode(flac_picture(BACK, "image/jpeg", 4, "back").write()).decode("ascii"),
    ]
    audio.save()


def tag_m4a(path: Path) -> None:
    audio = MP4(path)
    audio["\xa9nam"] = EXPECTED["title"]
    audio["\xa9ART"] = EXPECTED["artist"]
    audio["\xa9alb"] = EXPECTED["album"]
    audio["aART"] = EXPECTED["albumartist"]
    audio["trkn"] = [(3, 12)]
    audio["disk"] = [(1, 2)]
    audio["\xa9day"] = ["1999-05-01"]
    audio["\xa9gen"] = ["Rock"]
    audio["\xa9cmt"] = ["a comment"]
    audio["covr"] = [
        MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG),
        MP4Cover(BACK, imageformat=MP4Cover.FORMAT_JPEG),
    ]
    audio.save()


def tag_mka(music: np.ndarray, folder: Path) -> Path:
    """A FLAC stream in Matroska, tagged and with two pictures attached, as ffmpeg (and yt-dlp) writes it."""
    if FFMPEG is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg and ffprobe are needed to make and read a Matroska file")
    wav, path = folder / "for_mka.wav", folder / "song.mka"
    sf.write(wav, music.T, 44100)
    (folder / "cover.png").write_bytes(COVER)
    (folder / "back.jpg").write_bytes(BACK)
    fields = {
        "title": EXPECTED["title"][0], "artist": "Artist One, Artist Two", "album": EXPECTED["album"][0],
        "album_artist": EXPECTED["albumartist"][0], "track": "3/12", "disc": "1/2", "date": "1999-05-01",
        "genre": "Rock", "comment": "a comment", "REPLAYGAIN_TRACK_GAIN": "-6.5 dB",
    }  # fmt: skip
    metadata = [arg for name, value in fields.items() for arg in ("-metadata", f"{name}={value}")]
    subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-i", wav, "-c:a", "flac", *metadata,
         "-attach", folder / "cover.png", "-metadata:s:t:0", "mimetype=image/png",
         "-attach", folder / "back.jpg", "-metadata:s:t:1", "mimetype=image/jpeg", path],
        check=True,
    )  # fmt: skip
    return path


def make_tagged(kind: str, folder: Path) -> Path:
    music = make_music(0.6, seed=11)
    if kind == "mp3":
        path = folder / "song.mp3"
        sf.write(path, music.T, 44100, format="MP3")
        tag_mp3(path)
    elif kind == "flac":
        path = folder / "song.flac"
        sf.write(path, music.T, 44100)
        tag_flac(path)
    elif kind == "ogg":
        path = folder / "song.ogg"
        sf.write(path, music.T, 44100, format="OGG")
        tag_ogg(path)
    elif kind == "mka":
        path = tag_mka(music, folder)
    else:
        if FFMPEG is None:
            pytest.skip("ffmpeg is needed to make an M4A file")
        wav = folder / "for_m4a.wav"
        sf.write(wav, music.T, 44100)
        path = folder / "song.m4a"
        subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", wav, "-c:a", "aac", path], check=True)
        tag_m4a(path)
    return path


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def pictures(path: Path) -> list[tuple[int, str, str, bytes]]:
    return sorted((p.type, p.mime, p.description.strip(), p.data) for p in tags.read_tags(path).pictures)


EXPECTED_PICTURES = sorted([(3, "image/png", "front", COVER), (4, "image/jpeg", "back", BACK)])

# ---------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("kind", ["mp3", "flac", "ogg", "m4a", "mka"])
def test_read_tags(kind: str, tmp_path: Path) -> None:
    source = make_tagged(kind, tmp_path)
    found = tags.read_tags(source)
    assert found.warnings == NOTES[kind]
    assert found.fields == expected_fields(kind)  # and nothing else: no ReplayGain, no iTunNORM, no encoder
    assert pictures(source) == expected_pictures(kind)


def test_untagged_files_have_no_tags_and_no_warnings(tmp_path: Path) -> None:
    sf.write(tmp_path / "plain.wav", make_music(0.3).T, 44100)
    sf.write(tmp_path / "plain.mp3", make_music(0.3).T, 44100, format="MP3")
    for name in ("plain.wav", "plain.mp3"):
        found = tags.read_tags(tmp_path / name)
        assert not found and found.warnings == []


def test_riff_info_of_a_wav_is_read(tmp_path: Path) -> None:
    path = tmp_path / "info.wav"
    with sf.SoundFile(path, "w", 44100, 2) as f:
        f.title, f.artist, f.album = "Info Title", "Info Artist", "Info Album"
        f.write(make_music(0.3).T)
    found = tags.read_tags(path)
    assert found.fields == {"title": ["Info Title"], "artist": ["Info Artist"], "album": ["Info Album"]}


def test_damaged_tags_give_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "damaged.flac"
    sf.write(path, make_music(0.3).T, 44100)
    tag_flac(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"TITLE=")
    data[start - 8 : start - 4] = b"\xff\xff\xff\x7f"  # an absurd comment count
    path.write_bytes(bytes(data))
    found = tags.read_tags(path)
    assert len(found.warnings) == 1 and "damaged.flac" in found.warnings[0]
    assert tags.read_tags(tmp_path / "missing.mp3").warnings  # even a missing file only warns


def test_odd_values(tmp_path: Path) -> None:
    path = tmp_path / "vinyl.mp3"
    sf.write(path, make_music(0.3).T, 44100, format="MP3")
    audio = MP3(path)
    audio.add_tags()
    audio.tags.add(id3.TRCK(encoding=3, text="A1"))  # vinyl side and track
    audio.tags.add(id3.APIC(encoding=3, mime="-->", type=3, desc="", data=b"http://example.com/c.jpg"))
    audio.tags.add(id3.APIC(encoding=3, mime="", type=0, desc="x", data=COVER))
    audio.save()
    found = tags.read_tags(path)
    assert found.fields == {"tracknumber": ["A1"]}
    assert [(p.mime, p.type) for p in found.pictures] == [("image/png", 0)]  # sniffed
    assert any("link" in w for w in found.warnings)


def test_wm_picture_is_parsed() -> None:
    blob = (
        struct.pack("<bI", 3, len(COVER))
        + "image/png".encode("utf-16-le") + b"\x00\x00"
        + "front".encode("utf-16-le") + b"\x00\x00"
        + COVER
    )  # fmt: skip
    assert tags._parse_wm_picture(blob) == tags.Picture(COVER, "image/png", 3, "front")
    with pytest.raises(ValueError, match="picture data is cut short"):
        tags._parse_wm_picture(blob[:-5])


# ------------------------------------------------------------------------ carried to outputs


@pytest.mark.parametrize("kind", ["mp3", "flac", "ogg", "m4a", "mka"])
@pytest.mark.parametrize("suffix", [".flac", ".wav"])
def test_restore_carries_tags(kind: str, suffix: str, tmp_path: Path, model: apollo_cli.Apollo) -> None:
    source = make_tagged(kind, tmp_path)
    target = tmp_path / f"out{suffix}"
    result = apollo_cli.restore_file(model, source, target)
    assert list(result.tag_warnings) == NOTES[kind]
    carried = tags.read_tags(target)
    assert carried.warnings == []
    expected = dict(expected_fields(kind))
    if suffix == ".wav" and kind != "mka":  # ID3v2.3 in WAV joins several values with "/"
        expected["artist"] = ["Artist One/Artist Two"]
    assert carried.fields == expected
    assert pictures(target) == pictures(source)
    # The audio is untouched by the tagging: it still reads in full.
    assert sf.info(target).frames == apollo_cli.audio.load_audio(source).frames
    if suffix == ".flac":
        native = FLAC(target)
        assert native["TITLE"] == EXPECTED["title"] and len(native.pictures) == 2
        assert {p.data for p in native.pictures} == {COVER, BACK}
    else:
        native = WAVE(target)
        assert native.tags.version[:2] == (2, 3)
        assert {frame.data for frame in native.tags.getall("APIC")} == {COVER, BACK}


def test_restore_without_tags(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    source = make_tagged("mp3", tmp_path)
    apollo_cli.restore_file(model, source, tmp_path / "out.flac", carry_tags=False)
    assert not tags.read_tags(tmp_path / "out.flac")


def test_the_restore_command_carries_tags(tmp_path: Path) -> None:
    source = make_tagged("mp3", tmp_path)
    result = CliRunner().invoke(
        app, ["restore", str(source), "-o", str(tmp_path / "o.flac"), "--model", str(TINY_MODEL)]
    )
    assert result.exit_code == 0, result.output
    assert tags.read_tags(tmp_path / "o.flac").fields == EXPECTED


def test_the_batch_command_carries_tags(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (library / "a").mkdir(parents=True)
    make_tagged("mp3", library / "a")
    make_tagged("flac", library)
    result = CliRunner().invoke(
        app, ["batch", str(library), "--model", str(TINY_MODEL), "--device", "cpu", "-q"]
    )
    assert result.exit_code == 0, result.output
    for output in (tmp_path / "lib-restored" / "a" / "song.flac", tmp_path / "lib-restored" / "song.flac"):
        assert tags.read_tags(output).fields == EXPECTED
        assert pictures(output) == EXPECTED_PICTURES


# --------------------------------------------------------------- a tag never fails a restore


def test_unreadable_tags_do_not_fail_the_restore(
    tmp_path: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_tagged("flac", tmp_path)

    def broken(*args: object, **kwargs: object) -> None:
        raise mutagen.MutagenError("the tag parser choked")

    monkeypatch.setattr(tags.mutagen, "File", broken)
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    assert len(result.tag_warnings) == 1 and "the tag parser choked" in result.tag_warnings[0]
    assert sf.info(tmp_path / "out.flac").frames > 0


def test_a_picture_too_large_for_flac_is_skipped(tmp_path: Path) -> None:
    target = tmp_path / "out.flac"
    sf.write(target, make_music(0.3).T, 44100)
    huge = tags.Picture(b"\xff\xd8" + bytes(17 * 2**20), "image/jpeg", 3, "")
    warnings = tags.write_tags(
        target, tags.Tags({"title": ["t"]}, [huge, tags.Picture(COVER, "image/png")]), "FLAC"
    )
    assert len(warnings) == 1 and "too large for FLAC" in warnings[0]
    assert tags.read_tags(target).fields == {"title": ["t"]}
    assert [p.data for p in tags.read_tags(target).pictures] == [COVER]
    assert sf.info(target).frames == round(0.3 * 44100)


def test_a_failing_tag_save_is_a_warning(
    tmp_path: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_tagged("mp3", tmp_path)

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise ValueError("a value mutagen cannot store")

    monkeypatch.setattr(FLAC, "save", refuse)
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    assert list(result.tag_warnings[:-1]) == NOTES["mp3"] and "cannot store" in result.tag_warnings[-1]
    assert sf.info(tmp_path / "out.flac").frames == apollo_cli.audio.load_audio(source).frames


def test_an_io_error_while_tagging_fails_the_write_cleanly(
    tmp_path: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_tagged("mp3", tmp_path)
    out = tmp_path / "out"
    out.mkdir()

    def disk_full(self: object, *args: object, **kwargs: object) -> None:
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise mutagen.flac.error(exc) from None  # how mutagen wraps I/O errors

    monkeypatch.setattr(FLAC, "save", disk_full)
    with pytest.raises(apollo_cli.OutputError, match=r"(?i)no space left"):
        apollo_cli.restore_file(model, source, out / "o.flac")
    assert os.listdir(out) == []  # no output, no temporary file


def test_the_restore_command_shows_tag_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_tagged("mp3", tmp_path)
    monkeypatch.setattr(tags, "_write_flac", lambda *a: (_ for _ in ()).throw(ValueError("odd frame")))
    result = CliRunner().invoke(
        app, ["restore", str(source), "-o", str(tmp_path / "o.flac"), "--model", str(TINY_MODEL)]
    )
    assert result.exit_code == 0, result.output
    assert "note:" in result.stderr and "odd frame" in result.stderr


# ------------------------------------------------------------ tags read by content, not name


@pytest.mark.parametrize("kind, lie", [("flac", ".mp3"), ("mp3", ".flac"), ("ogg", ".mp3"), ("m4a", ".wav")])
def test_a_file_whose_extension_lies_keeps_its_tags(
    kind: str, lie: str, tmp_path: Path, model: apollo_cli.Apollo
) -> None:
    """A FLAC named .mp3 (and the like) decodes by content; its tags and pictures come along too."""
    source = make_tagged(kind, tmp_path)
    liar = source.rename(tmp_path / f"liar{lie}")
    result = apollo_cli.restore_file(model, liar, tmp_path / "out.flac")
    assert list(result.tag_warnings) == NOTES[kind]
    carried = tags.read_tags(tmp_path / "out.flac")
    assert carried.fields == EXPECTED
    assert pictures(tmp_path / "out.flac") == pictures(liar) and len(pictures(liar)) == 2


# ------------------------------------------- the fields library tools depend on (Picard's)

MB = {  # MusicBrainz IDs, each distinct so a mix-up shows
    "recording": "0b0d8a4c-1111-4f2b-9a1e-000000000001",
    "releasetrack": "0b0d8a4c-2222-4f2b-9a1e-000000000002",
    "album": "0b0d8a4c-3333-4f2b-9a1e-000000000003",
    "artist": "0b0d8a4c-4444-4f2b-9a1e-000000000004",
    "albumartist": "0b0d8a4c-5555-4f2b-9a1e-000000000005",
    "releasegroup": "0b0d8a4c-6666-4f2b-9a1e-000000000006",
    "work": "0b0d8a4c-7777-4f2b-9a1e-000000000007",
}

#: The extra fields, by their Vorbis-comment names as Picard writes them.
RICH = {
    "composer": ["J. S. Bach"],
    "lyricist": ["A. Poet"],
    "conductor": ["K. Maestro"],
    "lyrics": ["la la la\nsecond line"],
    "isrc": ["GBAYE0601498"],
    "label": ["Some Label"],
    "bpm": ["120"],
    "copyright": ["2001 Someone"],
    "compilation": ["1"],
    "albumsort": ["Album, The"],
    "artistsort": ["One, Artist"],
    "titlesort": ["Title"],
    "albumartistsort": ["Various Artists"],
    "composersort": ["Bach, J. S."],
    "musicbrainz_trackid": [MB["recording"]],  # the recording ID, as Picard's Vorbis comments
    "musicbrainz_releasetrackid": [MB["releasetrack"]],
    "musicbrainz_albumid": [MB["album"]],
    "musicbrainz_artistid": [MB["artist"]],
    "musicbrainz_albumartistid": [MB["albumartist"]],
    "musicbrainz_releasegroupid": [MB["releasegroup"]],
    "musicbrainz_workid": [MB["work"]],
    "releasetype": ["album"],
    "releasestatus": ["official"],
    "releasecountry": ["GB"],
    "barcode": ["5099902894225"],
    "catalognumber": ["CAT-1"],
    "media": ["CD"],
    "originaldate": ["1967-06-01"],
    "grouping": ["Group"],
    "subtitle": ["Sub"],
    "discsubtitle": ["Disc Sub"],
    "mood": ["Happy"],
    "performer": ["Bob (guitar)"],
    "producer": ["George"],
    "website": ["https://example.com/artist"],
    "my custom tag": ["custom value"],
}


def tag_rich_flac(path: Path) -> None:
    """Vorbis comments as Picard writes them, plus ReplayGain and encoder comments."""
    audio = FLAC(path)
    for name, values in {**EXPECTED, **RICH}.items():
        audio[name.upper()] = values
    audio["REPLAYGAIN_TRACK_GAIN"], audio["REPLAYGAIN_ALBUM_PEAK"] = ["-7.1 dB"], ["0.98"]
    audio["ENCODER"], audio["ENCODEDBY"] = ["Lavf 60"], ["Someone's ripper"]
    audio.save()


def test_vorbis_fields_are_carried_by_name(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    source = tmp_path / "rich.flac"
    sf.write(source, make_music(0.6).T, 44100)
    tag_rich_flac(source)
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    assert result.tag_warnings == (
        f"not carried: REPLAYGAIN_TRACK_GAIN, REPLAYGAIN_ALBUM_PEAK {RECOMPUTE}",
    )  # and not a word about the encoder
    native = FLAC(tmp_path / "out.flac")
    for name, values in RICH.items():
        assert native[name.upper()] == values, name
    assert native["MUSICBRAINZ_TRACKID"] == [MB["recording"]]
    for dropped in ("REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_ALBUM_PEAK", "ENCODER", "ENCODEDBY"):
        assert dropped not in native
    assert tags.read_tags(tmp_path / "out.flac").fields == {**EXPECTED, **RICH}


def test_wav_output_gets_picards_id3_frames(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    source = tmp_path / "rich.flac"
    sf.write(source, make_music(0.6).T, 44100)
    tag_rich_flac(source)
    apollo_cli.restore_file(model, source, tmp_path / "out.wav")
    frames = WAVE(tmp_path / "out.wav").tags
    text = {key: list(frames[key].text) for key in frames if hasattr(frames[key], "text") and key[0] == "T"}
    assert text["TCOM"] == ["J. S. Bach"] and text["TEXT"] == ["A. Poet"] and text["TPE3"] == ["K. Maestro"]
    assert text["TSRC"] == ["GBAYE0601498"] and text["TPUB"] == ["Some Label"] and text["TBPM"] == ["120"]
    assert text["TCOP"] == ["2001 Someone"] and text["TCMP"] == ["1"] and text["TSOP"] == ["One, Artist"]
    assert text["TSO2"] == ["Various Artists"] and text["TIT1"] == ["Group"] and text["TMED"] == ["CD"]
    assert frames["USLT::XXX"].text == "la la la\nsecond line"
    assert frames["UFID:http://musicbrainz.org"].data == MB["recording"].encode()
    for desc, key in (("MusicBrainz Release Track Id", "releasetrack"), ("MusicBrainz Album Id", "album"),
                      ("MusicBrainz Artist Id", "artist"), ("MusicBrainz Album Artist Id", "albumartist"),
                      ("MusicBrainz Release Group Id", "releasegroup"), ("MusicBrainz Work Id", "work")):  # fmt: skip
        assert text[f"TXXX:{desc}"] == [MB[key]], desc
    assert text["TXXX:MusicBrainz Album Type"] == ["album"] and text["TXXX:BARCODE"] == ["5099902894225"]
    assert text["TXXX:my custom tag"] == ["custom value"]
    assert sorted(map(tuple, frames["TIPL"].people)) == [
        ("guitar", "Bob"),
        ("producer", "George"),
    ]  # IPLS on disk
    assert frames.getall("WOAR")[0].url == "https://example.com/artist"
    assert not [key for key in frames if "REPLAYGAIN" in key.upper()]
    # and read back, every field is there under its own name again
    assert tags.read_tags(tmp_path / "out.wav").fields == {
        **EXPECTED,
        **RICH,
        "artist": ["Artist One/Artist Two"],
    }


def test_id3_fields_reach_flac_under_picards_vorbis_names(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    source = tmp_path / "picard.mp3"
    sf.write(source, make_music(0.6).T, 44100, format="MP3")
    audio = MP3(source)
    audio.add_tags()
    t = audio.tags
    t.add(id3.TIT2(encoding=3, text="Song"))
    t.add(id3.TCOM(encoding=3, text="J. S. Bach"))
    t.add(id3.USLT(encoding=3, lang="eng", desc="", text="la la la"))
    t.add(id3.TSRC(encoding=3, text="GBAYE0601498"))
    t.add(id3.TPUB(encoding=3, text="Some Label"))
    t.add(id3.TCMP(encoding=3, text="1"))
    t.add(id3.TSOP(encoding=3, text="One, Artist"))
    t.add(id3.UFID(owner="http://musicbrainz.org", data=MB["recording"].encode()))
    t.add(id3.TXXX(encoding=3, desc="MusicBrainz Release Track Id", text=MB["releasetrack"]))
    t.add(id3.TXXX(encoding=3, desc="MusicBrainz Album Id", text=MB["album"]))
    t.add(id3.TXXX(encoding=3, desc="MusicBrainz Release Group Id", text=MB["releasegroup"]))
    t.add(id3.TXXX(encoding=3, desc="Acoustid Id", text="acoustid-1"))
    t.add(id3.TMCL(encoding=3, people=[["guitar", "Bob"]]))
    t.add(id3.TIPL(encoding=3, people=[["producer", "George"]]))
    t.add(id3.TXXX(encoding=3, desc="replaygain_album_gain", text="-3 dB"))
    t.add(id3.TSSE(encoding=3, text="LAME 3.100"))  # the encoder: dropped silently
    t.add(id3.TENC(encoding=3, text="Ripper"))
    t.add(id3.POPM(email="me@example.com", rating=196, count=3))
    t.add(id3.PRIV(owner="WM/Provider", data=b"x\x00"))
    audio.save()
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    # ReplayGain first, named with what to do; then the rest; not a word about the encoder
    assert result.tag_warnings == (
        f"not carried: TXXX:replaygain_album_gain {RECOMPUTE}, POPM (rating), PRIV:WM/Provider",
    )
    native = FLAC(tmp_path / "out.flac")
    assert native["COMPOSER"] == ["J. S. Bach"] and native["LYRICS"] == ["la la la"]
    assert native["ISRC"] == ["GBAYE0601498"] and native["LABEL"] == ["Some Label"]
    assert native["COMPILATION"] == ["1"] and native["ARTISTSORT"] == ["One, Artist"]
    assert native["MUSICBRAINZ_TRACKID"] == [MB["recording"]]
    assert native["MUSICBRAINZ_RELEASETRACKID"] == [MB["releasetrack"]]
    assert native["MUSICBRAINZ_ALBUMID"] == [MB["album"]]
    assert native["MUSICBRAINZ_RELEASEGROUPID"] == [MB["releasegroup"]]
    assert native["ACOUSTID_ID"] == ["acoustid-1"]
    assert native["PERFORMER"] == ["Bob (guitar)"] and native["PRODUCER"] == ["George"]
    for dropped in ("REPLAYGAIN_ALBUM_GAIN", "ENCODER", "ENCODEDBY", "ENCODERSETTINGS"):
        assert dropped not in native


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is needed to make an M4A file")
def test_mp4_freeform_fields_reach_flac(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    from mutagen.mp4 import MP4FreeForm

    source = make_tagged("m4a", tmp_path)
    audio = MP4(source)
    itunes = "----:com.apple.iTunes:"
    audio["\xa9wrt"], audio["\xa9lyr"], audio["cpil"], audio["tmpo"] = (
        ["J. S. Bach"],
        ["la la la"],
        True,
        [120],
    )
    for name, value in (("MusicBrainz Track Id", MB["recording"]), ("MusicBrainz Release Track Id", MB["releasetrack"]),
                        ("MusicBrainz Album Id", MB["album"]), ("MusicBrainz Artist Id", MB["artist"]),
                        ("MusicBrainz Release Group Id", MB["releasegroup"]), ("ISRC", "GBAYE0601498"),
                        ("LABEL", "Some Label"), ("CONDUCTOR", "K. Maestro"),
                        ("replaygain_track_gain", "-2 dB"), ("iTunSMPB", " 00000000 00000840")):  # fmt: skip
        audio[itunes + name] = [MP4FreeForm(value.encode())]
    audio.save()
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    assert result.tag_warnings == (f"not carried: {itunes}replaygain_track_gain {RECOMPUTE}",)
    native = FLAC(tmp_path / "out.flac")
    assert native["COMPOSER"] == ["J. S. Bach"] and native["LYRICS"] == ["la la la"]
    assert native["COMPILATION"] == ["1"] and native["BPM"] == ["120"]
    assert native["MUSICBRAINZ_TRACKID"] == [MB["recording"]]
    assert native["MUSICBRAINZ_RELEASETRACKID"] == [MB["releasetrack"]]
    assert native["MUSICBRAINZ_ALBUMID"] == [MB["album"]] and native["MUSICBRAINZ_ARTISTID"] == [MB["artist"]]
    assert native["MUSICBRAINZ_RELEASEGROUPID"] == [MB["releasegroup"]]
    assert native["ISRC"] == ["GBAYE0601498"] and native["LABEL"] == ["Some Label"]
    assert native["CONDUCTOR"] == ["K. Maestro"]
    assert "ITUNSMPB" not in native and "REPLAYGAIN_TRACK_GAIN" not in native


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is needed to make a WMA file")
def test_asf_fields_reach_flac(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    from mutagen.asf import ASF, ASFByteArrayAttribute

    wav = tmp_path / "for_wma.wav"
    sf.write(wav, make_music(0.6).T, 44100)
    source = tmp_path / "song.wma"
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", wav, "-c:a", "wmav2", source], check=True)
    audio = ASF(source)
    audio["Title"], audio["WM/Composer"], audio["WM/Lyrics"] = ["Song"], ["J. S. Bach"], ["la la la"]
    audio["WM/ISRC"], audio["WM/Publisher"], audio["WM/IsCompilation"] = (
        ["GBAYE0601498"],
        ["Some Label"],
        [True],
    )
    audio["MusicBrainz/Track Id"] = [MB["recording"]]
    audio["MusicBrainz/Release Track Id"] = [MB["releasetrack"]]
    audio["MusicBrainz/Album Id"] = [MB["album"]]
    audio["replaygain_track_gain"] = ["-2 dB"]
    audio["WM/MCDI"] = [ASFByteArrayAttribute(b"\x01\x02")]
    audio.save()
    result = apollo_cli.restore_file(model, source, tmp_path / "out.flac")
    assert result.tag_warnings == (f"not carried: replaygain_track_gain {RECOMPUTE}, WM/MCDI",)
    native = FLAC(tmp_path / "out.flac")
    assert (
        native["TITLE"] == ["Song"]
        and native["COMPOSER"] == ["J. S. Bach"]
        and native["LYRICS"] == ["la la la"]
    )
    assert (
        native["ISRC"] == ["GBAYE0601498"]
        and native["LABEL"] == ["Some Label"]
        and native["COMPILATION"] == ["1"]
    )
    assert native["MUSICBRAINZ_TRACKID"] == [MB["recording"]]
    assert native["MUSICBRAINZ_RELEASETRACKID"] == [MB["releasetrack"]]
    assert native["MUSICBRAINZ_ALBUMID"] == [MB["album"]]
    assert "ENCODER" not in native and "WMFSDKVERSION" not in native
